"""Public PyTorch programs (tests/programs/vendor/, see README.md) run unchanged on tensorlib or torch.

`prepare(name, workdir, steps)` copies a program into `workdir` with synthetic data of the real data's shapes
and returns its command line; `run(...)` runs it in a child process (tests/programs/runner.py) with `torch`
being tensorlib (backend="tensorlib", through tensorlib.compat) or torch itself, and returns the loss of every
`backward()` call, in order, and the wall time of each step. Nothing in the programs is edited: the runner
only observes (`Tensor.backward`, the outermost `Module.__call__`) and, when asked, draws the programs' random
numbers from one shared NumPy stream (rng="shared") and starts the model from a saved initial state
(init="dump"/"load"), so that tensorlib and torch can be compared step by step.

Used by tests/programs/test_programs.py (they train), devtools/torch_compat/test_programs_against_torch.py
(same losses as torch) and benchmarks (steps per second).
"""
from __future__ import annotations

import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys

import numpy as np

from safeio import read_bounded, write_bytes

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENDOR = HERE / "vendor"


def _markov_tokens(vocab, n, seed):
    """A learnable token stream: each token mostly follows one fixed successor."""
    rng = np.random.default_rng(seed)
    nxt = np.random.default_rng(0).permutation(vocab)
    out = np.empty(n, np.int64)
    out[0] = 0
    for i in range(1, n):
        out[i] = nxt[out[i - 1]] if rng.random() < 0.8 else rng.integers(vocab)
    return out


def _words(n, seed):
    rng = np.random.default_rng(seed)
    syll = ["an", "el", "ma", "ri", "to", "ka", "li", "ne", "so", "ju"]
    return ["".join(syll[j] for j in rng.integers(0, len(syll), rng.integers(1, 4))) for _ in range(n)]


def _mnist(work, steps, variant):
    return {"mnist": {"train": 8 * steps, "test": 16}}, [
        "main.py", "--batch-size", "8", "--test-batch-size", "16", "--epochs", "1", "--no-accel",
        "--log-interval", "1", "--save-model"]


def _vae(work, steps, variant):
    (work / "results").mkdir()
    return {"mnist": {"train": 16 * steps, "test": 16}}, [
        "main.py", "--batch-size", "16", "--epochs", "1", "--no-accel", "--log-interval", "1"]


def _word_lm(work, steps, variant):
    vocab = [f"w{i}" for i in range(24)]
    d = work / "data" / "synth"
    d.mkdir(parents=True)
    for split, n, seed in (("train", 4 * (8 * steps + 1), 1), ("valid", 90, 2), ("test", 90, 3)):
        toks = _markov_tokens(len(vocab), n, seed)
        lines = [" ".join(vocab[t] for t in toks[i:i + 9]) for i in range(0, n, 10)]  # + <eos> = 10 tokens
        write_bytes(d / f"{split}.txt", ("\n".join(lines) + "\n").encode())
    args = ["main.py", "--data", str(d), "--model", variant, "--emsize", "16", "--nhid", "16", "--nlayers", "2",
            "--epochs", "1", "--bptt", "8", "--batch_size", "4", "--dropout", "0.0", "--log-interval", "2",
            "--save", "model.pt"]
    if variant == "Transformer":
        args += ["--use-optimizer", "--lr", "0.003"]
    else:
        args += ["--lr", "2"]
    return {}, args


def _nanogpt(work, steps, variant):
    """`steps` optimizer steps of 2 micro-batches each (gradient accumulation), a checkpoint after the last
    but one; variant "resume" then trains 2 more steps from that checkpoint in a second run."""
    d = work / "data" / "synth"
    d.mkdir(parents=True)
    for split, seed in (("train", 1), ("val", 2)):
        write_bytes(d / f"{split}.bin", _markov_tokens(32, 2000, seed).astype(np.uint16).tobytes())
    write_bytes(d / "meta.pkl", pickle.dumps({"vocab_size": 32}))
    last = steps - 1
    return {}, ["train.py", "--device=cpu", "--compile=False", "--dtype=float32", "--dataset=synth",
                "--n_layer=2", "--n_head=2", "--n_embd=32", "--block_size=16", "--batch_size=4",
                "--gradient_accumulation_steps=2", f"--max_iters={last}", f"--eval_interval={max(last, 1)}",
                "--eval_iters=2", "--warmup_iters=1", f"--lr_decay_iters={last + 10}", "--learning_rate=3e-3",
                "--min_lr=3e-4", "--out_dir=out"]


def _makemore(work, steps, variant):
    write_bytes(work / "names.txt", ("\n".join(_words(300, 1)) + "\n").encode())
    return {}, ["makemore.py", "-i", "names.txt", "-o", "out", "--type", variant, "--max-steps", str(steps),
                "--num-workers", "0", "--batch-size", "16", "--n-layer", "2", "--n-head", "2", "--n-embd", "16",
                "--n-embd2", "16", "--learning-rate", "0.01", "--device", "cpu"]


def _mnist_rnn(work, steps, variant):
    return {"mnist": {"train": 8 * steps, "test": 16}}, [
        "main.py", "--batch-size", "8", "--test-batch-size", "16", "--epochs", "1", "--log-interval", "1",
        "--lr", "1.0", "--save-model"]


def _dcgan(work, steps, variant):
    """64x64 images (the architecture's size) from FakeData, tiny filters: `steps` batches, 3 losses each."""
    return {"fake": {"train": 4 * steps}}, [
        "main.py", "--dataset", "fake", "--workers", "0", "--batchSize", "4", "--nz", "8", "--ngf", "4", "--ndf",
        "4", "--niter", "1", "--outf", "out", "--manualSeed", "1"]


def _time_sequence(work, steps, variant):
    """LBFGS steps of up to 20 loss evaluations (backward calls) each: enough of them for `steps` calls.
    torch.load reads the NumPy array that torch.save wrote only with weights_only=False, no longer the
    default in torch >= 2.6: the environment's TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 gives it back, as a
    user of torch 2.13 does."""
    return {"setup": "sine_waves", "env": {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}}, [
        "train.py", "--steps", str(-(-steps // 20))]


def _cartpole(work, steps, variant):
    """Episodes of at most 30 steps on the CartPole stand-in (stubs/gymnasium), the program "solved" at a
    running reward of 10 + steps / 2 (gymnasium: 500 steps, 475): one loss per episode, about `steps` of them."""
    return {"cartpole": {"max_episode_steps": 30, "reward_threshold": 10 + steps / 2}}, [
        f"{variant}.py", "--log-interval", "1"]


CORA_URL = "https://linqs-data.soe.ucsc.edu/public/lbc/cora.tgz"


def _cora(work, nodes, seed=0):
    """A synthetic Cora of `nodes` papers (cora/cora.content: "<id>\t<1433 0/1 words>\t<label>", cora/cora.cites:
    "<cited id>\t<citing id>"), also packed as cora.tgz for the requests stand-in to serve (gcn/main.py
    downloads on every run; gat/main.py finds the files and skips it). 7 classes; each paper has 12 words,
    9 of them (on average) from its class's 40, and cites about two papers, 85% of them of its class:
    the features and the graph both tell the class, so a few epochs lower the loss."""
    import io
    import tarfile
    rng = np.random.default_rng(seed)
    labels = ["Case_Based", "Genetic_Algorithms", "Neural_Networks", "Probabilistic_Methods",
              "Reinforcement_Learning", "Rule_Learning", "Theory"]
    n_words = 1433
    topics = rng.permutation(n_words)[:7 * 40].reshape(7, 40)
    ids = rng.choice(np.arange(30, 1_200_000), nodes, replace=False)
    cls = rng.integers(0, 7, nodes)
    lines = []
    for i in range(nodes):
        words = np.zeros(n_words, np.int8)
        own = rng.random(12) < 0.75
        words[rng.choice(topics[cls[i]], own.sum(), replace=False)] = 1
        words[rng.integers(0, n_words, (~own).sum())] = 1
        lines.append(f"{ids[i]}\t" + "\t".join(map(str, words)) + f"\t{labels[cls[i]]}")
    by_class = [np.flatnonzero(cls == c) for c in range(7)]
    cites = []
    for i in range(nodes):
        for _ in range(2):
            j = rng.choice(by_class[cls[i]]) if rng.random() < 0.85 else rng.integers(0, nodes)
            if j != i:
                cites.append(f"{ids[j]}\t{ids[i]}")
    d = work / "cora"
    d.mkdir()
    files = {"cora/cora.content": ("\n".join(lines) + "\n").encode(),
             "cora/cora.cites": ("\n".join(cites) + "\n").encode()}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            write_bytes(work / name, data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    write_bytes(work / "cora.tgz", buf.getvalue())
    return {"serve": {CORA_URL: str(work / "cora.tgz")}}


def _gcn(work, steps, variant):
    """1700 papers: the program tests on its first 1000 (of a permutation), validates on 500, trains on the
    rest (Cora has 2708)."""
    return _cora(work, 1700), ["main.py", "--epochs", str(steps), "--hidden-dim", "16", "--dropout-p", "0.1",
                               "--lr", "0.05", "--val-every", "1", "--include-bias", "--no-accel"]


def _gat(work, steps, variant):
    """1800 papers (test 1200, validation 400, training the rest), 2 heads of 8: attention is dense, heads x
    papers x papers."""
    return _cora(work, 1800), ["main.py", "--epochs", str(steps), "--hidden-dim", "8", "--num-heads", "2",
                               "--dropout-p", "0.1", "--lr", "0.02", "--val-every", "1", "--no-accel"]


LLAMA2C_TOKENIZER = '''"""Written by tests/programs/harness.py in place of llama2.c's tokenizer.py, not vendored: it is
Meta's code under the Llama 2 Community License (and needs sentencepiece). tinystories.py imports Tokenizer
for its pretokenize stage only; training reads the pretokenized shards the harness writes."""


class Tokenizer:
    def __init__(self):
        raise RuntimeError("the llama2.c test's Tokenizer is a stand-in: its shards are pretokenized")
'''


def _llama2c(work, steps, variant):
    """llama2.c's train.py: a LLaMA (RMSNorm, SwiGLU, rotary embeddings through torch.polar and
    view_as_complex) on TinyStories shards of uint16 tokens, here three synthetic ones (the first the
    validation split) from a 64-token Markov stream; its vocabulary stays the program's 32000 (a constant
    in train.py). `steps` backward calls (at least 6): steps / 2 iterations of 2 micro-batches, evaluated (and
    checkpointed: ckpt.pt, and model.bin by Transformer.export) at the first and the last."""
    d = work / "data" / "TinyStories_all_data"
    d.mkdir(parents=True)
    for i, (n, seed) in enumerate(((600, 3), (1200, 1), (1200, 2))):
        write_bytes(d / f"data{i:02d}.bin", _markov_tokens(64, n, seed).astype(np.uint16).tobytes())
    write_bytes(work / "tokenizer.py", LLAMA2C_TOKENIZER.encode())
    last = max(steps // 2 - 1, 2)        # lr warm-up and decay need max_iters > warmup_iters = 1
    return {}, ["train.py", "--device=cpu", "--compile=False", "--dtype=float32", "--batch_size=4",
                "--max_seq_len=16", "--dim=32", "--n_layers=2", "--n_heads=4", "--multiple_of=16",
                "--gradient_accumulation_steps=2", f"--max_iters={last}", f"--eval_interval={last}",
                "--eval_iters=2", "--warmup_iters=1", "--learning_rate=3e-3"]


def _siamese(work, steps, variant):
    """Pairs of synthetic MNIST digits (same class or not) through torchvision's ResNet-18 (stubs/torchvision/
    models) with a 1-channel conv1: 28x28 images shrink to 1x1 by layer4. The classes are drawn evenly
    ("balanced"): the program picks two different images of a class, looping until it finds them, so each
    class needs two (real MNIST has ~6000)."""
    return {"mnist": {"train": 8 * steps, "test": 20, "balanced": True}}, [
        "main.py", "--batch-size", "8", "--test-batch-size", "20", "--epochs", "1", "--no-accel", "--log-interval",
        "1", "--save-model", "--lr", "0.02"]


def _bsds300(work, n_train, n_test, seed=0):
    """dataset/BSDS300/images/{train,test}: smooth synthetic RGB photographs (256x256 PNG: a few blurred colour
    blobs and stripes), where data.py finds BSDS300 already there and downloads nothing."""
    import io

    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    for split, n in (("train", n_train), ("test", n_test)):
        d = work / "dataset" / "BSDS300" / "images" / split
        d.mkdir(parents=True)
        for i in range(n):
            img = np.zeros((256, 256, 3))
            for _ in range(6):
                cy, cx, r = rng.random(3) * [1, 1, 0.3] + [0, 0, 0.05]
                img += rng.random(3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2)[..., None]
            f, a = rng.random(2) * [30, np.pi]
            img += 0.3 * np.sin(f * (np.cos(a) * xx + np.sin(a) * yy))[..., None] * rng.random(3)
            img = (255 * (img - img.min()) / (np.ptp(img) + 1e-9)).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            write_bytes(d / f"{i:04d}.png", buf.getvalue())


def _super_resolution(work, steps, variant):
    """Upscale factor 3 (255x255 targets from 85x85 inputs), batches of 4 images; `--threads 0` is the
    DataLoader's num_workers."""
    _bsds300(work, 4 * steps, 4)
    return {}, ["main.py", "--upscale_factor", "3", "--batchSize", "4", "--testBatchSize", "4", "--nEpochs", "1",
                "--lr", "0.001", "--threads", "0"]


def _regression(work, steps, variant):
    """No data and no arguments: it fits a degree-4 polynomial to random batches until the smooth L1 loss is
    below 1e-3 (a few hundred steps, each a 32x4 Linear); `steps` does not bound it."""
    return {}, ["main.py"]


def _forward_forward(work, steps, variant):
    """Hinton's forward-forward algorithm: one batch of `--train_size` digits (the whole training set the program
    takes, `next(iter(loader))`), each of the two 784->500->500 layers trained on its own goodness loss with its own
    Adam for `--epochs` steps: `steps` backward calls in all (steps / 2 epochs a layer)."""
    return {"mnist": {"train": 64, "test": 32}}, [
        "main.py", "--epochs", str(max(steps // 2, 1)), "--train_size", "64", "--test_size", "32", "--no_accel",
        "--log-interval", "1", "--save_model"]


def _imagenet(work, steps, variant):
    """imagenet/main.py with `--dummy`: torchvision's FakeData of ImageNet's shape (3x224x224, 1000 classes; the
    program asks for 1281167 training and 50000 validation images, here 2 * steps and 4) through ResNet-18
    (stubs/torchvision/models), SGD with momentum and weight decay, StepLR, top-1/top-5 accuracy by `topk`,
    a validation pass and `checkpoint.pth.tar` (+ `model_best.pth.tar`). `--seed` sets cudnn.deterministic."""
    return {"fake": {"1281167": 2 * steps, "50000": 4}}, [
        "main.py", "--dummy", "-a", "resnet18", "-j", "0", "--epochs", "1", "-b", "2", "--lr", "0.01",
        "-p", "1", "--no-accel", "--seed", "1"]


def _tutorial_mnist(work, steps, variant):
    """yunjey/pytorch-tutorial's MNIST scripts have no arguments: their epochs (`variant`: 5 for the Linear, MLP
    and CNN ones, 2 for the RNNs, 15 for the VAE, 200 for the GAN) and batch size (100; the VAE's 128) are
    constants, so the data set's size sets the steps: whole batches, at least one an epoch (the GAN reshapes
    each batch to its batch_size)."""
    epochs, batch = variant
    return {"mnist": {"train": batch * max(1, -(-steps // epochs)), "test": 100}}, ["main.py"]


def _tutorial_resnet(work, steps, variant):
    """deep_residual_network: 80 epochs (a constant) of CIFAR-10 (stubs/torchvision: synthetic 32x32 colour
    images) through Pad, RandomHorizontalFlip, RandomCrop: one batch of 8 images an epoch, 80 steps whatever
    `steps` is (a batch of 100 images, 80 times, would take minutes)."""
    return {"cifar10": {"train": 8, "test": 16}}, ["main.py"]


def _tutorial_language_model(work, steps, variant):
    """language_model: an LSTM (hidden 1024, a constant) over data/train.txt (Penn Treebank there, not in the
    repository's snapshot: a synthetic text of 24 words from a learnable Markov stream), 5 epochs of batches of
    20 rows by 30 tokens: the text is sized for one batch an epoch per 5 steps; it then samples 1000 words."""
    per_epoch = max(1, -(-steps // 5))
    n = 20 * (30 * per_epoch + 1)
    vocab = [f"w{i}" for i in range(24)]
    toks = _markov_tokens(len(vocab), n, 5)
    lines = [" ".join(vocab[t] for t in toks[i:i + 9]) for i in range(0, n, 10)]     # + <eos> = 10 tokens
    (work / "data").mkdir()
    write_bytes(work / "data" / "train.txt", ("\n".join(lines) + "\n").encode())
    return {}, ["main.py"]


def _tutorial_basics(work, steps, variant):
    """pytorch_basics: two backward calls (autograd examples 1 and 2), then CIFAR-10 through a DataLoader, where
    it stops, on torch 2.13 as on tensorlib: `data_iter.next()` (Python 2's iterator method, gone from torch's
    DataLoader iterators since 1.13) raises AttributeError; its later sections would need pretrained ResNet-18
    weights (`resnet18(pretrained=True)`), refused here."""
    return {"cifar10": {"train": 64, "test": 16}}, ["main.py"]


def _tutorial_plain(work, steps, variant):
    """linear_regression: 60 full-batch steps on its 15 points (constants in the script)."""
    return {}, ["main.py"]


def _mingpt(work, steps, variant):
    """minGPT's projects (run from the repository's root, where `mingpt` imports, as after its `pip install -e
    .`): their config's command-line overrides make gpt-nano small and stop it after `steps` iterations
    (`--trainer.max_iters`; the Trainer's sampler is otherwise infinite), in the main process
    (`--trainer.num_workers=0`). Each evaluates at iteration 0 (the callback's `iter_num % 500 == 0`): adder
    the whole train and test splits by greedy `generate` (1-digit sums: 100 problems, 80 to train on), and
    chargpt samples 500 characters (`multinomial` of the top 10) after "O God, O God!" from `input.txt`, here
    a synthetic text of its 16 characters' words (Shakespeare's there)."""
    if variant == "adder":
        return {}, ["projects/adder/adder.py", f"--trainer.max_iters={steps}", "--trainer.num_workers=0",
                    "--trainer.batch_size=16", "--data.ndigit=1", "--trainer.learning_rate=2e-3"]
    words = ["O God,", "O God!", "good", "night", "sweet", "prince", "to", "sleep", "die", "dream", "so"]
    toks = _markov_tokens(len(words), 700, 7)
    write_bytes(work / "input.txt", "\n".join(" ".join(words[t] for t in toks[i:i + 8])
                                              for i in range(0, len(toks), 8)).encode())
    return {}, ["projects/chargpt/chargpt.py", f"--trainer.max_iters={steps}", "--trainer.num_workers=0",
                "--trainer.batch_size=8", "--model.model_type=gpt-nano", "--data.block_size=32"]


LLM_DRIVER = '''"""Written by tests/programs/harness.py beside rasbt/LLMs-from-scratch's code, which is not changed: the
training scripts' `__main__` blocks train GPT-2 124M (a constant config) on the-verdict.txt or middlemarch.txt for
10 or 15 epochs, so this runs the script's own `main(gpt_config, settings)` with a small config, then what its
`__main__` does after training: the loss plot, and the state dict saved and loaded into a new GPTModel (01_opt's
is compiled: its keys start with "_orig_mod.", the prefix the script's commented-out code strips).
argv: the script's folder and module name."""
import sys

import torch

sys.path.insert(0, sys.argv[1])
module = __import__(sys.argv[2])
GPT_CONFIG = {"vocab_size": 256, "context_length": 32, "emb_dim": 32, "n_heads": 4, "n_layers": 2,
              "drop_rate": 0.1, "qkv_bias": False}
SETTINGS = {"learning_rate": 2e-3, "num_epochs": 1, "batch_size": 4, "weight_decay": 0.1}
train_losses, val_losses, tokens_seen, model = module.main(GPT_CONFIG, SETTINGS)
epochs_tensor = torch.linspace(0, SETTINGS["num_epochs"], len(train_losses))
module.plot_losses(epochs_tensor, tokens_seen, train_losses, val_losses)
torch.save(model.state_dict(), "model.pth")
state = torch.load("model.pth", weights_only=True)
again = module.GPTModel(GPT_CONFIG)
again.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in state.items()})
print("reloaded", len(state), "tensors")
'''


def _llms_from_scratch(work, steps, variant):
    """rasbt/LLMs-from-scratch's GPT trained by `main()` of a chapter-5 script (LLM_DRIVER: the scripts' own
    config is GPT-2 124M), on a synthetic text written as both files the scripts read (the-verdict.txt,
    middlemarch.txt: a Markov stream of ten words), tokenized byte by byte by stubs/tiktoken; one epoch of
    batches of 4 x 32 tokens, the text sized for `steps` of them. 01_opt_single_gpu trains the model compiled
    (`torch.compile`) and in bfloat16 with fused AdamW and data loading in 4 worker processes."""
    words = ["every", "effort", "moves", "you", "the", "painter", "said", "with", "a", "smile"]
    n_chars = int((4 * 32 * steps + 64) / 0.9) + 40
    toks = _markov_tokens(len(words), n_chars // 3, 11)
    text = " ".join(words[t] for t in toks)[:n_chars]
    for name in ("the-verdict.txt", "middlemarch.txt"):
        write_bytes(work / name, text.encode())
    write_bytes(work / "train_tiny.py", LLM_DRIVER.encode())
    folder, module = variant.rsplit("/", 1)
    return {}, ["train_tiny.py", folder, module]


# yunjey/pytorch-tutorial: one script a folder, each run from its own folder as the tutorial says
TUTORIAL = "pytorch_tutorial/tutorials/"

# name -> (vendored folder, data and arguments, variant)
PROGRAMS = {
    "mnist": ("mnist", _mnist, None),
    "vae": ("vae", _vae, None),
    "word_lm_lstm": ("word_language_model", _word_lm, "LSTM"),
    "word_lm_gru": ("word_language_model", _word_lm, "GRU"),
    "word_lm_rnn_tanh": ("word_language_model", _word_lm, "RNN_TANH"),
    "word_lm_transformer": ("word_language_model", _word_lm, "Transformer"),
    "nanogpt": ("nanogpt", _nanogpt, None),
    "makemore_transformer": ("makemore", _makemore, "transformer"),
    "makemore_gru": ("makemore", _makemore, "gru"),
    "makemore_rnn": ("makemore", _makemore, "rnn"),
    "makemore_mlp": ("makemore", _makemore, "mlp"),
    "makemore_bow": ("makemore", _makemore, "bow"),
    "makemore_bigram": ("makemore", _makemore, "bigram"),
    "mnist_rnn": ("mnist_rnn", _mnist_rnn, None),
    "dcgan": ("dcgan", _dcgan, None),
    "time_sequence_prediction": ("time_sequence_prediction", _time_sequence, None),
    "reinforce": ("reinforcement_learning", _cartpole, "reinforce"),
    "actor_critic": ("reinforcement_learning", _cartpole, "actor_critic"),
    "gcn": ("gcn", _gcn, None),
    "gat": ("gat", _gat, None),
    "llama2c": ("llama2c", _llama2c, None),
    "siamese_network": ("siamese_network", _siamese, None),
    "super_resolution": ("super_resolution", _super_resolution, None),
    "regression": ("regression", _regression, None),
    "mnist_forward_forward": ("mnist_forward_forward", _forward_forward, None),
    "imagenet": ("imagenet", _imagenet, None),
    "tutorial_pytorch_basics": (TUTORIAL + "01-basics/pytorch_basics", _tutorial_basics, None),
    "tutorial_linear_regression": (TUTORIAL + "01-basics/linear_regression", _tutorial_plain, None),
    "tutorial_logistic_regression": (TUTORIAL + "01-basics/logistic_regression", _tutorial_mnist, (5, 100)),
    "tutorial_feedforward": (TUTORIAL + "01-basics/feedforward_neural_network", _tutorial_mnist, (5, 100)),
    "tutorial_cnn": (TUTORIAL + "02-intermediate/convolutional_neural_network", _tutorial_mnist, (5, 100)),
    "tutorial_resnet": (TUTORIAL + "02-intermediate/deep_residual_network", _tutorial_resnet, None),
    "tutorial_rnn": (TUTORIAL + "02-intermediate/recurrent_neural_network", _tutorial_mnist, (2, 100)),
    "tutorial_birnn": (TUTORIAL + "02-intermediate/bidirectional_recurrent_neural_network", _tutorial_mnist,
                       (2, 100)),
    "tutorial_language_model": (TUTORIAL + "02-intermediate/language_model", _tutorial_language_model, None),
    "tutorial_gan": (TUTORIAL + "03-advanced/generative_adversarial_network", _tutorial_mnist, (200, 100)),
    "tutorial_vae": (TUTORIAL + "03-advanced/variational_autoencoder", _tutorial_mnist, (15, 128)),
    "mingpt_adder": ("mingpt", _mingpt, "adder"),
    "mingpt_chargpt": ("mingpt", _mingpt, "chargpt"),
    "llm_gpt_train": ("llms_from_scratch", _llms_from_scratch, "ch05/01_main-chapter-code/gpt_train"),
    "llm_opt_single_gpu": ("llms_from_scratch", _llms_from_scratch, "ch05/10_llm-training-speed/01_opt_single_gpu"),
}

# programs that stop with an error on torch 2.13 itself, before their end: run to check tensorlib stops at the same
# place with the same error (tests/programs/test_programs.py), not trained or compared loss by loss
FAILS_ON_TORCH = {"tutorial_pytorch_basics"}

# programs whose step is an episode, its length set by the actions sampled: each library drawing its own random
# numbers, their episodes (and best steps) differ; timed side by side, they draw from one stream (rng="shared")
EPISODE_STEPS = {"reinforce", "actor_critic"}

# programs whose initial state (init="dump"/"load") is taken when each optimizer is built, not at the model's
# first call: mnist_forward_forward trains each layer (its own Adam) through `self.forward`, calling the layers
# only to predict, after training
INIT_AT = {"mnist_forward_forward": "optimizer"}

# programs run with one BLAS/OpenMP thread unless `threads` is given: siamese_network's convolutions alternate
# MKL's 2-d products (libiomp threads spin ~200 ms after each call, KMP_BLOCKTIME) with NumPy's batched ones on
# OpenBLAS's own threads, which on two busy cores wait for them: 3 steps took 26 s with 2 threads, 2.9 s with
# one, 4.6 s with KMP_BLOCKTIME=0 (2026-12-05)
ONE_THREAD = {"siamese_network"}

# losses that need not fall over a few steps: a GAN's, policy gradients' (normalized returns), and imagenet's on
# FakeData (random images with random labels, a new batch each step)
LOSS_NEED_NOT_FALL = {"dcgan", "reinforce", "actor_critic", "imagenet", "tutorial_gan"}


def prepare(name, workdir, steps):
    """Copy program `name` into `workdir` (created) with its synthetic data; return (data sizes, argv)."""
    folder, make, variant = PROGRAMS[name]
    work = pathlib.Path(workdir)
    shutil.copytree(VENDOR / folder, work, ignore=shutil.ignore_patterns("__pycache__"))
    return make(work, steps, variant)


def run(name, backend, workdir, steps, *, rng="native", init=None, init_file=None, extra_args=(), fresh=True,
        timeout=600, threads=None, profile=None, clock="wall", toggle=False, script=None, count_calls=False):
    """Run program `name` for about `steps` steps on `backend` ("tensorlib" or "torch") in `workdir`.

    rng="shared": the programs' random draws (randint, randperm, randn(_like), rand, dropout masks) come from one
    NumPy stream seeded alike in both backends. init="dump" writes the model's state at its first call to
    `init_file` (default workdir/init.npz); init="load" loads that file into the model there. fresh=False reruns a
    prepared folder (a resume); with script="other.py" it runs that file of the program instead, with `extra_args`
    alone as its arguments (super_resolution's super_resolve.py). Returns {"losses": [...], "step_s": [...],
    "wall_s": ..., "stdout": ...}; raises RuntimeError with the child's output when it fails. threads=N limits the
    child's BLAS/OpenMP pools (threadpoolctl) and torch's intra-op threads to N; profile="default" or "detailed"
    (record_shapes, profile_memory) runs the program under torch.profiler.profile (CPU activity), and "share"
    (tensorlib only) under default options with every op kernel timed (runner.time_kernels); a profiled run also
    returns events and ops per step (runner.step_events); programs in ONE_THREAD default to threads=1; toggle=True
    (with "default" or "detailed") records two steps of every four (the profiler's toggle_collection_dynamic at
    each step's end, runner.toggled_on), so that profiled and unprofiled steps alternate in one process;
    clock="cpu" times steps with the process's CPU time instead of the wall clock (robust on a shared machine);
    count_calls=True also returns the outermost module calls of each step ("calls_at_step": an episode's actions)."""
    work = pathlib.Path(workdir)
    if threads is None and name in ONE_THREAD:
        threads = 1
    if fresh:
        sizes, argv = prepare(name, work, steps)
        write_bytes(work / "program.json", json.dumps({"sizes": sizes, "argv": argv}).encode())
    else:
        saved = json.loads(read_bounded(work / "program.json"))
        sizes, argv = saved["sizes"], saved["argv"]
    argv = [script] if script else argv
    spec = {"backend": backend, "workdir": str(work), "argv": [*argv, *extra_args], "sizes": sizes, "rng": rng,
            "init": init, "init_at": INIT_AT.get(name), "threads": threads, "profile": profile, "clock": clock,
            "toggle": toggle, "count_calls": count_calls,
            "init_file": str(init_file or work / "init.npz"), "out": str(work / f"result-{backend}.json")}
    spec_path = work / f"spec-{backend}.json"
    write_bytes(spec_path, json.dumps(spec).encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENSORLIB_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    r = subprocess.run([sys.executable, "-m", "tests.programs.runner", str(spec_path)], cwd=work, env=env,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{name} on {backend} exited with {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}")
    result = json.loads(read_bounded(spec["out"]))
    result["stdout"] = r.stdout
    return result
