"""The pytorch/examples VAE, written from its published code, as a peer in `make bench`.

    .venv-torch/bin/python -m benchmarks.pytorch_reference --data DIR --out RESULT.json \
        --checkpoints 10 30 60 --epoch-checkpoints 5

pytorch/examples vae/main.py, rebuilt from its architecture and defaults: a
784-400-20 encoder (ReLU) with a mean head and a log-variance head, a
20-400-784 decoder ending in a sigmoid, the reparameterization
z = mu + exp(logvar / 2) * eps, the loss summed binary cross-entropy + KL
(sum over the batch, as published), Adam at 1e-3, batch 128, shuffled every
epoch, the last partial batch kept. One change, in PyTorch's favour: the
batches are cut from one in-memory tensor with `torch.randperm` instead of a
`DataLoader` over a torchvision dataset, so no per-image Python work is timed.

This file imports only torch, numpy and `benchmarks.common` (which loads no
TensorFlow): `make bench` runs it in its own virtualenv (`.venv-torch`, a
CPU build of torch), so keras_vae never depends on torch. The data come from
the calling benchmark as `train.npy` and `test.npy` (float32 `[N, 28, 28,
1]` in [0, 1]) under `--data`, and the protocol is
`benchmarks.quality_per_second`'s: training time runs from the first step,
evaluations pause it, and at each checkpoint of training seconds (and after
each of `--epoch-checkpoints` complete epochs) the test negative ELBO is
measured with one z per image and the analytic KL. At the last checkpoint
also the importance-weighted NLL. Writes one JSON result.
"""

import argparse
import json
import math
import os
import platform
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmarks.common import median_ms

BATCH_SIZE = 128
LEARNING_RATE = 1e-3
PIXELS = 784
HIDDEN = 400
LATENT_DIM = 20


class VAE(nn.Module):
    """pytorch/examples' `VAE`, layer for layer."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(PIXELS, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, LATENT_DIM)
        self.fc22 = nn.Linear(HIDDEN, LATENT_DIM)
        self.fc3 = nn.Linear(LATENT_DIM, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, PIXELS)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, PIXELS))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_terms(model, x):
    """Per-image (reconstruction, KL) in nats, as the published loss sums them."""
    recon, mu, logvar = model(x)
    reconstruction = F.binary_cross_entropy(recon, x, reduction="none").sum(dim=1)
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
    return reconstruction, kl


def evaluate(model, test, seed, batch_size=1000):
    """`{"neg_elbo", "reconstruction", "kl"}` means over the test images.

    Seeded for the same eps at every evaluation, inside `fork_rng`, so the
    training's random stream goes on as if no evaluation had happened.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return _evaluate(model, test, batch_size)


def _evaluate(model, test, batch_size):
    model.eval()
    reconstructions, kls = [], []
    with torch.no_grad():
        for start in range(0, len(test), batch_size):
            reconstruction, kl = loss_terms(model, test[start : start + batch_size])
            reconstructions.append(reconstruction)
            kls.append(kl)
    model.train()
    reconstruction = float(torch.cat(reconstructions).mean())
    kl = float(torch.cat(kls).mean())
    return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}


def importance_weighted_nll(model, images, k, seed, samples_per_pass=100):
    """-log (1/k) sum p(x|z) p(z) / q(z|x), z ~ q(z|x), nats per image (mean)."""
    torch.manual_seed(seed)  # after training: nothing else draws from the stream
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    totals = []
    with torch.no_grad():
        for start in range(0, len(images), 100):
            x = images[start : start + 100]
            mu, logvar = model.encode(x)
            std = torch.exp(0.5 * logvar)
            log_sums = []
            for done in range(0, k, samples_per_pass):
                samples = min(samples_per_pass, k - done)
                eps = torch.randn((samples, *mu.shape))
                z = mu + std * eps  # [samples, batch, latent]
                recon = model.decode(z)
                target = x.expand(samples, *x.shape)
                log_px = -F.binary_cross_entropy(recon, target, reduction="none").sum(dim=2)
                log_pz = -(0.5 * z.pow(2) + half_log_2pi).sum(dim=2)
                log_qz = -(0.5 * eps.pow(2) + half_log_2pi + 0.5 * logvar).sum(dim=2)
                log_sums.append(torch.logsumexp(log_px + log_pz - log_qz, dim=0))
            log_mean = torch.logsumexp(torch.stack(log_sums), dim=0) - math.log(k)
            totals.append(-log_mean)
    return float(torch.cat(totals).mean())


def decode_latency(model):
    figures = {}
    with torch.no_grad():
        for batch in (1, 64):
            z = torch.randn(batch, LATENT_DIM)
            figures[f"decode_ms_batch_{batch}"] = median_ms(lambda z=z: model.decode(z), 100)
    return figures


def forward_flops():
    """Multiply-adds x 2 of one image's forward pass (biases and activations left out)."""
    return 2 * (PIXELS * HIDDEN + 2 * HIDDEN * LATENT_DIM + LATENT_DIM * HIDDEN + HIDDEN * PIXELS)


def train(model, train_images, test, checkpoints, epoch_checkpoints, seed):
    """Trains against the wall-clock `checkpoints`; returns (curve, after_epochs, epoch_seconds)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    curve, after_epochs, epoch_seconds = [], [], []
    paused = 0.0
    next_checkpoint = 0
    start = time.perf_counter()
    elapsed = lambda: time.perf_counter() - start - paused  # noqa: E731
    epoch = 0
    while next_checkpoint < len(checkpoints):
        epoch_start = elapsed()
        order = torch.randperm(len(train_images), generator=generator)
        complete = True
        for first in range(0, len(train_images), BATCH_SIZE):
            data = train_images[order[first : first + BATCH_SIZE]]
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            bce = F.binary_cross_entropy(recon, data, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            (bce + kld).backward()
            optimizer.step()
            now = elapsed()
            if now >= checkpoints[next_checkpoint]:
                pause = time.perf_counter()
                point = {"checkpoint": checkpoints[next_checkpoint], "seconds": now}
                curve.append({**point, **evaluate(model, test, seed)})
                paused += time.perf_counter() - pause
                next_checkpoint += 1
                if next_checkpoint == len(checkpoints):
                    complete = first + BATCH_SIZE >= len(train_images)
                    break
        if not complete:
            break
        epoch += 1
        epoch_seconds.append(elapsed() - epoch_start)
        if epoch in epoch_checkpoints:
            pause = time.perf_counter()
            point = {"epochs": epoch, "seconds": elapsed()}
            after_epochs.append({**point, **evaluate(model, test, seed)})
            paused += time.perf_counter() - pause
    return curve, after_epochs, epoch_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="directory with train.npy and test.npy")
    parser.add_argument("--out", required=True, help="result JSON path")
    parser.add_argument("--checkpoints", type=float, nargs="+", required=True)
    parser.add_argument("--epoch-checkpoints", type=int, nargs="*", default=[])
    parser.add_argument("--iw-k", type=int, default=1000)
    parser.add_argument("--iw-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    train_images = torch.from_numpy(np.load(os.path.join(args.data, "train.npy")))
    test = torch.from_numpy(np.load(os.path.join(args.data, "test.npy")))
    train_images = train_images.reshape(len(train_images), PIXELS).contiguous()
    test = test.reshape(len(test), PIXELS).contiguous()
    model = VAE()
    curve, after_epochs, epoch_seconds = train(
        model, train_images, test, sorted(args.checkpoints), set(args.epoch_checkpoints), args.seed
    )
    start = time.perf_counter()
    iw_nll = importance_weighted_nll(model, test[: args.iw_images], args.iw_k, args.seed)
    curve[-1].update(iw_nll=iw_nll, iw_seconds=time.perf_counter() - start)
    result = {
        "model": "pytorch_reference",
        "training_path": "pytorch/examples vae: eager PyTorch, batches cut from one tensor",
        "framework": f"torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops_per_image": forward_flops(),
        "images_per_epoch": len(train_images),
        "curve": curve,
        "after_epochs": after_epochs,
        "epoch_seconds": epoch_seconds,
        **decode_latency(model),
    }
    tmp = f"{args.out}.tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
