"""pyplot's figure, labels, plot, legend, show, savefig and close: each checks nothing beyond its call and draws
nothing; `plot` keeps the number of points of its last call's line (for a test to look at)."""
from __future__ import annotations

import numpy as np

last_plot: list = []


def plot(x, y, *fmt, **kwargs):
    if np.shape(x) != np.shape(y):
        raise ValueError(f"x and y must have same first dimension, but have shapes {np.shape(x)} and {np.shape(y)}")
    last_plot[:] = [len(x)]


def _nothing(*args, **kwargs):
    return None


figure = title = xlabel = ylabel = xticks = yticks = savefig = close = legend = show = _nothing


class Axes:
    """`fig, ax = plt.subplots()`'s axes (LLMs-from-scratch's plot_losses): plot as pyplot's, twiny a second
    axes, the labels and legend nothing."""

    def plot(self, x, y, *fmt, **kwargs):
        plot(x, y, *fmt, **kwargs)

    def twiny(self):
        return Axes()

    set_xlabel = set_ylabel = legend = _nothing


class Figure:
    tight_layout = savefig = _nothing


def subplots(nrows=1, ncols=1, **kwargs):
    if (nrows, ncols) != (1, 1):
        raise NotImplementedError("the matplotlib stand-in has one axes a figure")
    return Figure(), Axes()
