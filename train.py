"""Fine-tune (default) or train from scratch (--scratch) a ResNet-18 on the Caltech-101 split.

    python train.py                           # published best configuration, ImageNet weights
    python train.py --scratch                 # the same recipe from random initialisation
    python train.py --model efficientnet_b0 --patience 5   # another torchvision backbone, early stopping
    python train.py --run-name NAME --resume  # continue an interrupted run exactly

Defaults are the published values (Adam, lr_fc 1e-3, lr_base 1e-4, StepLR 10 x0.1, batch 32,
30 epochs, seed 107). Writes TensorBoard scalars to LOGDIR/RUN, best.pth / last.pth / metrics.json
to CKPT_DIR/RUN, and finally evaluates the best-on-validation checkpoint on the test split.
"""
import argparse

from caltech.cli import ArgumentParser, add_settings
from caltech.recipe import GROUPS
from caltech.training import fit
from caltech.utils import run_cli


def get_args_parser(add_help=True):
    parser = ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings(parser, GROUPS)  # every flag is an entry of caltech/recipe.py
    return parser


def main(args):
    """Train one run (caltech.training.fit.train); returns its final metrics."""
    return fit.train(args)


if __name__ == "__main__":
    run_cli(main, get_args_parser().parse_args())
