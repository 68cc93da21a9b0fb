"""A stand-in for gymnasium's `make("CartPole-v1")` (gymnasium is not a dependency): the cart-pole of
gymnasium's classic_control/cartpole.py (Barto, Sutton and Anderson's equations, Euler steps of 0.02 s,
reset to uniform(-0.05, 0.05) states), under a time limit, with `spec.reward_threshold`. The time limit
and the threshold are gymnasium's (500, 475.0) unless `CartPole.limits` says otherwise (runner.py sets
small ones so that a test's episodes are short and a program's "solved" check comes early)."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np


class CartPole:
    limits: dict = {}
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length
        self.max_episode_steps = self.limits.get("max_episode_steps", 500)
        self.spec = SimpleNamespace(id="CartPole-v1", max_episode_steps=self.max_episode_steps,
                                    reward_threshold=self.limits.get("reward_threshold", 475.0))
        self.np_random = np.random.default_rng()
        self.state = None
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.state = self.np_random.uniform(low=-0.05, high=0.05, size=(4,))
        self.steps = 0
        return np.array(self.state, dtype=np.float32), {}

    def step(self, action):
        if action not in (0, 1):
            raise ValueError(f"{action!r} ({type(action)}) invalid")
        if self.state is None:
            raise RuntimeError("Call reset before using step method.")
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + self.polemass_length * theta_dot ** 2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta ** 2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * xacc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc
        self.state = np.array((x, x_dot, theta, theta_dot), dtype=np.float64)
        self.steps += 1
        terminated = bool(abs(x) > self.x_threshold or abs(theta) > self.theta_threshold_radians)
        truncated = self.steps >= self.max_episode_steps
        return np.array(self.state, dtype=np.float32), 1.0, terminated, truncated, {}

    def render(self):
        return None

    def close(self):
        return None


def make(id, render_mode=None, **kwargs):
    if id != "CartPole-v1":
        raise NotImplementedError(f"this gymnasium stand-in has CartPole-v1 only, not {id!r}")
    return CartPole(render_mode=render_mode)
