"""Latent priors fitted to the codes of a dataset after training ("ex-post density estimation").

A VAE's codes do not fill N(0, I): many prior draws land where no training
image's code lies and decode to blurry in-betweens. Fitting a density to the
codes of the training images and sampling z from it instead sharpens the
samples without retraining (Ghosh et al. 2020, "From Variational to
Deterministic Autoencoders"; Dai & Wipf 2019, "Diagnosing and Enhancing VAE
Models"). The same fitted prior makes a deterministic `Autoencoder` generate.

Every prior here is one value type, `GaussianMixture`: mixture weights,
component means and lower Cholesky factors of the covariances. The standard
normal is the one-component mixture N(0, I) and a full-covariance Gaussian is
a one-component mixture, so sampling, scoring, saving and the exported
generator's sampler are written once:

    pick component c with probability weights[c]
    z = means[c] + cholesky[c] @ eps,  eps ~ N(0, I)

The EM is written here in NumPy (about 100 lines, tested against known
mixtures) rather than taken from scikit-learn: it is the only thing the
package would use of scikit-learn and SciPy, which would add about 100 MB to
every install, and the export needs the Cholesky parameterization anyway.
No TensorFlow import.
"""

import math
import time

import numpy as np

from keras_vae.utils import names

# The prior kinds (`names.PRIORS`): what `fit` makes and `--prior` names. VAMP is
# not fitted: a VAE trained with `learned_prior="vamp"` computes it from its weights.
STANDARD, GAUSSIAN, GMM, VAMP, TWO_STAGE = names.PRIORS
# Components tried by `fit_gmm` when none is given; the one with the best
# held-out log-likelihood wins.
COMPONENT_CANDIDATES = (1, 5, 10, 20, 50)
# Codes the EM fits at most (a seeded random subset of the training codes):
# 20,000 32-D codes fit 50 full-covariance components in about 10 s (2 cores).
MAX_FIT_CODES = 20_000
# Added to every covariance's diagonal, relative to the codes' mean variance
# (plus an absolute floor): duplicate codes cannot make a covariance singular.
COVARIANCE_FLOOR = 1e-4
_LOG_2PI = math.log(2.0 * math.pi)
# Codes per block of the EM's outer products ([block, d * d] float64 at a time):
# at most 4096, fewer in many dimensions so that a block stays under 256 MB.
_CHUNK = 4096
_CHUNK_VALUES = 2**25


def _chunk(latent_dim):
    return max(1, min(_CHUNK, _CHUNK_VALUES // (latent_dim * latent_dim)))


class GaussianMixture:
    """A mixture of full-covariance Gaussians over latent codes.

    Args:
        weights: `[k]`, non-negative, summing to 1.
        means: `[k, latent_dim]`.
        cholesky: `[k, latent_dim, latent_dim]`, lower-triangular factors
            with a positive diagonal: covariance[c] = cholesky[c] @ cholesky[c].T.
        kind: "standard", "gaussian", "gmm" or "vamp" (what it was made as).
        info: a JSON-able dict of how it was fitted (codes, components
            tried, held-out log-likelihoods, seconds).
        label_weights: optional `[num_labels, k]`, each row non-negative and
            summing to 1: the mixture's weights given each class, which
            makes it a prior per class, p(z | y) (`fit_per_class`: a
            conditional VAE's codes of each class). `weights` is then the
            mixture over every class (the class frequencies times their rows).
    """

    def __init__(self, weights, means, cholesky, kind=GMM, info=None, label_weights=None):
        names.check_choice("kind", kind, names.PRIORS)
        weights = np.asarray(weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        cholesky = np.asarray(cholesky, dtype=np.float64)
        if means.ndim != 2 or weights.shape != means.shape[:1] or len(weights) == 0:
            raise ValueError(
                f"A mixture needs weights [k] and means [k, latent_dim] with k >= 1; got "
                f"{weights.shape} and {means.shape}."
            )
        if cholesky.shape != means.shape + means.shape[-1:]:
            raise ValueError(
                f"cholesky must be [k, latent_dim, latent_dim] = {means.shape + means.shape[-1:]}; "
                f"got {cholesky.shape}."
            )
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)) or not math.isclose(
            weights.sum(), 1.0, rel_tol=1e-6
        ):
            raise ValueError(f"weights must be >= 0 and sum to 1; got sum {weights.sum()}.")
        diagonal = np.diagonal(cholesky, axis1=1, axis2=2)
        if not (np.all(np.isfinite(cholesky)) and np.all(np.isfinite(means))) or np.any(
            diagonal <= 0
        ):
            raise ValueError(
                "means and cholesky must be finite, with a positive Cholesky diagonal."
            )
        if label_weights is not None:
            label_weights = np.asarray(label_weights, dtype=np.float64)
            if (
                label_weights.ndim != 2
                or label_weights.shape[1] != len(weights)
                or not np.all(np.isfinite(label_weights))
                or np.any(label_weights < 0)
                or not np.allclose(label_weights.sum(axis=1), 1.0, rtol=1e-6)
            ):
                raise ValueError(
                    f"label_weights must be [num_labels, {len(weights)}], each row >= 0 and "
                    f"summing to 1; got shape {label_weights.shape}."
                )
        self.weights = weights
        self.means = means
        self.cholesky = np.tril(cholesky)
        self.kind = kind
        self.info = dict(info or {})
        self.label_weights = label_weights

    @property
    def latent_dim(self):
        return self.means.shape[1]

    @property
    def components(self):
        return len(self.weights)

    def __repr__(self):
        return (
            f"GaussianMixture(kind={self.kind!r}, components={self.components}, "
            f"latent_dim={self.latent_dim})"
        )

    def sample(self, n, seed=None, return_components=False, labels=None):
        """`n` codes drawn from the mixture: float32 `[n, latent_dim]`.

        Deterministic given an int `seed` (NumPy's default generator).
        With `return_components`, also the int32 `[n]` component of each draw.
        With `labels` (one-hot `[n, num_labels]`) a prior per class draws
        each code from its label's row of `label_weights`; another prior
        ignores them.
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0; got {n}.")
        rng = np.random.default_rng(seed)
        if labels is not None and self.label_weights is not None:
            cumulative = self.cumulative_weights(labels)
            u = rng.uniform(size=n)
            components = np.sum(u[:, None] >= cumulative, axis=1).astype(np.int32)
        else:
            components = rng.choice(self.components, size=n, p=self.weights).astype(np.int32)
        eps = rng.standard_normal((n, self.latent_dim))
        z = self.means[components] + np.einsum("nij,nj->ni", self.cholesky[components], eps)
        z = z.astype(np.float32)
        return (z, components) if return_components else z

    def cumulative_weights(self, labels):
        """Each label's cumulative weights but the last: float64 `[n, k - 1]`.

        How `sample` (and the exported sampler) picks a component for a
        label: the number of these that u ~ U[0, 1) reaches.
        """
        labels = np.asarray(labels, dtype=np.float64)
        if labels.ndim != 2 or labels.shape[1] != len(self.label_weights):
            raise ValueError(
                f"This prior takes labels of shape (n, {len(self.label_weights)}); "
                f"got {labels.shape}."
            )
        return (labels @ np.cumsum(self.label_weights, axis=1))[:, :-1]

    def component_log_probs(self, z, labels=None):
        """log(weights[c]) + log N(z | means[c], covariance[c]): float64 `[n, k]`.

        With `labels` (a prior per class), the weights are each label's.
        """
        z = self.check_codes(z)
        with np.errstate(divide="ignore"):
            log_weights = np.log(self.weights)
            if labels is not None and self.label_weights is not None:
                log_weights = np.log(np.asarray(labels, np.float64) @ self.label_weights)
        log_det = np.sum(np.log(np.diagonal(self.cholesky, axis1=1, axis2=2)), axis=1)
        inverse = np.linalg.inv(self.cholesky)  # lower-triangular [k, d, d]
        out = np.empty((len(z), self.components))
        for c in range(self.components):
            whitened = (z - self.means[c]) @ inverse[c].T
            out[:, c] = (
                log_weights[..., c]
                - log_det[c]
                - 0.5 * (self.latent_dim * _LOG_2PI + np.sum(whitened**2, axis=1))
            )
        return out

    def log_prob(self, z, labels=None):
        """The mixture's log density at each code, in nats: float64 `[n]`.

        With `labels`, a prior per class gives log p(z | y) of each code's label.
        """
        return _logsumexp(self.component_log_probs(z, labels), axis=1)

    def check_codes(self, z):
        """`z` as float64 `[n, latent_dim]`; ValueError for another width or NaN."""
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"This prior is over codes of shape (n, {self.latent_dim}); got {z.shape}."
            )
        return _check_codes(z, "codes", 0)

    def covariances(self):
        """`[k, d, d]`: cholesky @ cholesky.T."""
        return self.cholesky @ np.swapaxes(self.cholesky, 1, 2)

    def moments(self):
        """The mixture's overall mean `[d]` and covariance `[d, d]`.

        For a fit (`fit_gaussian`, or EM after an M-step) these are the mean
        and covariance of the codes it was fitted to, plus the covariance floor.
        """
        mean = self.weights @ self.means
        second = np.einsum("k,kij->ij", self.weights, self.covariances())
        second += np.einsum("k,ki,kj->ij", self.weights, self.means, self.means)
        return mean, second - np.outer(mean, mean)

    def principal_directions(self, count):
        """The `count` main directions of the codes (see `principal_directions`)."""
        return principal_directions(self, count)

    def to_dict(self):
        """A JSON-able dict; `from_dict` reads it back exactly (floats as Python floats)."""
        values = {
            "kind": self.kind,
            "components": self.components,
            "latent_dim": self.latent_dim,
            "weights": self.weights.tolist(),
            "means": self.means.tolist(),
            "cholesky": self.cholesky.tolist(),
            "sampling": "pick component c with probability weights[c]; "
            "z = means[c] + cholesky[c] @ eps with eps ~ N(0, I) (cholesky lower-triangular)",
            "info": self.info,
        }
        if self.label_weights is not None:
            values["label_weights"] = self.label_weights.tolist()
            values["sampling"] = (
                "for class y: pick component c with probability label_weights[y][c] "
                "(without a class: weights[c]); " + values["sampling"].split("; ", 1)[1]
            )
        return values

    @classmethod
    def from_dict(cls, values):
        try:
            return cls(
                values["weights"],
                values["means"],
                values["cholesky"],
                kind=values.get("kind", GMM),
                info=values.get("info"),
                label_weights=values.get("label_weights"),
            )
        except KeyError as error:
            raise ValueError(f"A saved prior lacks its {error.args[0]!r} entry.") from error


def principal_directions(prior, count):
    """The `count` main directions of `prior`'s codes, for sliders that move a code.

    Returns a JSON-able dict: "mean" `[d]`, "directions" `[count, d]` (unit
    eigenvectors of the covariance, largest variance first, each signed so
    its largest entry is positive) and "scales" `[count]` (the standard
    deviation of the codes along each). For N(0, I) every direction is as
    good as another: they are the axes, each of scale 1.
    """
    count = min(int(count), prior.latent_dim)
    if count < 1:
        raise ValueError(f"count must be >= 1; got {count}.")
    mean, covariance = prior.moments()
    variances, vectors = np.linalg.eigh(covariance)
    order = np.argsort(-variances, kind="stable")[:count]
    directions = vectors[:, order].T
    signs = np.sign(directions[np.arange(count), np.argmax(np.abs(directions), axis=1)])
    return {
        "mean": mean.tolist(),
        "directions": (directions * signs[:, None]).tolist(),
        "scales": np.sqrt(np.maximum(variances[order], 0.0)).tolist(),
        "source": f"covariance of the {prior.kind} prior ({prior.components} components)",
    }


class TwoStagePrior:
    """The prior of a two-stage VAE (Dai & Wipf 2019): a second, small VAE on the codes.

    z = decoder(u) with u ~ N(0, I): the second VAE's decoder, a ReLU network
    whose last layer is linear, maps its own standard-normal latent to the
    first VAE's codes (`keras_vae.generation.fit_two_stage` trains it). Its
    encoder and the learned scale `log_scale` of its Gaussian likelihood
    give `log_prob`, a lower bound of the density: its likelihood is
    N(z; decoder(u), diag(exp(log_scale))^2).

    Args:
        decoder: `[(kernel [in, out], bias [out]), ...]`, ReLU between the
            layers; the first takes and the last gives `latent_dim` values.
        encoder: the same, its last layer giving `2 * latent_dim` values:
            the posterior's mean, then its log-variance.
        log_scale: log of the likelihood's standard deviation, one per
            dimension `[latent_dim]` (or one float for all).
        info: a JSON-able dict of how it was trained.
    """

    kind = TWO_STAGE
    components = 1
    label_weights = None  # one prior for every label

    def __init__(self, decoder, encoder, log_scale, info=None):
        self.decoder = _layers(decoder, "decoder")
        self.encoder = _layers(encoder, "encoder")
        latent_dim = self.decoder[0][0].shape[0]
        if self.decoder[-1][0].shape[1] != latent_dim or self.encoder[-1][0].shape[1] != (
            2 * latent_dim
        ):
            raise ValueError(
                f"A two-stage prior's decoder maps {latent_dim} values to as many, and its "
                f"encoder {latent_dim} to {2 * latent_dim}; got "
                f"{self.decoder[-1][0].shape[1]} and {self.encoder[-1][0].shape[1]}."
            )
        log_scale = np.broadcast_to(np.asarray(log_scale, np.float64), (latent_dim,))
        if not np.all(np.isfinite(log_scale)):
            raise ValueError(f"log_scale must be finite; got {log_scale.tolist()}.")
        self.log_scale = log_scale.copy()
        self.info = dict(info or {})

    @property
    def latent_dim(self):
        return self.decoder[0][0].shape[0]

    def __repr__(self):
        return f"TwoStagePrior(latent_dim={self.latent_dim}, layers={len(self.decoder)})"

    def decode(self, u):
        """The codes z `[n, latent_dim]` (float64) of second-stage latents u `[n, latent_dim]`."""
        return _mlp(np.asarray(u, np.float64), self.decoder)

    def sample(self, n, seed=None, return_components=False, labels=None):
        """`n` codes: float32 `[n, latent_dim]` (components: all 0); `labels` are not used."""
        n = int(n)
        if n < 0:
            raise ValueError(f"n must be >= 0; got {n}.")
        u = np.random.default_rng(seed).standard_normal((n, self.latent_dim))
        z = self.decode(u).astype(np.float32)
        return (z, np.zeros(n, np.int32)) if return_components else z

    def log_prob(self, z, labels=None, samples=16, seed=0):
        """A lower bound of log p(z), nats: float64 `[n]`; `labels` are not used.

        The second VAE's importance-weighted bound with `samples` draws
        of u ~ q(u | z) (seeded): log mean_s p(z | u_s) p(u_s) / q(u_s | z).
        """
        z = _check_codes(z, "codes", 0)
        if z.shape[1] != self.latent_dim:
            raise ValueError(
                f"This prior is over codes of shape (n, {self.latent_dim}); got {z.shape}."
            )
        d = self.latent_dim
        posterior = _mlp(z, self.encoder)
        mean, log_var = posterior[:, :d], np.clip(posterior[:, d:], -30.0, 20.0)
        rng = np.random.default_rng(seed)
        weights = []
        for _ in range(samples):
            eps = rng.standard_normal(mean.shape)
            u = mean + np.exp(0.5 * log_var) * eps
            likelihood = -0.5 * np.sum(
                _LOG_2PI
                + 2 * self.log_scale
                + (z - self.decode(u)) ** 2 / np.exp(2 * self.log_scale),
                axis=1,
            )
            log_p_u = -0.5 * np.sum(_LOG_2PI + u**2, axis=1)
            log_q_u = -0.5 * np.sum(_LOG_2PI + log_var + eps**2, axis=1)
            weights.append(likelihood + log_p_u - log_q_u)
        return _logsumexp(np.stack(weights, axis=1), axis=1) - math.log(samples)

    def moments(self, draws=20_000):
        """The mean `[d]` and covariance `[d, d]` of `draws` codes (seed 0)."""
        z = self.sample(draws, seed=0).astype(np.float64)
        return z.mean(axis=0), _covariance(z)

    def principal_directions(self, count):
        """The `count` main directions of the codes (see `principal_directions`)."""
        return principal_directions(self, count)

    def to_dict(self):
        """A JSON-able dict; `from_dict` reads it back exactly."""

        def listed(layers):
            return [[kernel.tolist(), bias.tolist()] for kernel, bias in layers]

        return {
            "kind": self.kind,
            "components": 1,
            "latent_dim": self.latent_dim,
            "decoder": listed(self.decoder),
            "encoder": listed(self.encoder),
            "log_scale": self.log_scale.tolist(),
            "sampling": "u ~ N(0, I) (eps); h = u; for each decoder layer but the last: "
            "h = relu(h @ kernel + bias); z = h @ kernel + bias with the last",
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, values):
        try:
            return cls(
                values["decoder"], values["encoder"], values["log_scale"], values.get("info")
            )
        except KeyError as error:
            raise ValueError(f"A saved prior lacks its {error.args[0]!r} entry.") from error


def _layers(layers, what):
    found = []
    for kernel, bias in layers:
        kernel, bias = np.asarray(kernel, np.float64), np.asarray(bias, np.float64)
        if kernel.ndim != 2 or bias.shape != kernel.shape[1:]:
            raise ValueError(
                f"The {what}'s layers must be (kernel [in, out], bias [out]); got "
                f"{kernel.shape} and {bias.shape}."
            )
        if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
            raise ValueError(f"The {what}'s weights must be finite.")
        if found and found[-1][0].shape[1] != kernel.shape[0]:
            raise ValueError(
                f"The {what}'s layers do not chain: {found[-1][0].shape} then {kernel.shape}."
            )
        found.append((kernel, bias))
    if not found:
        raise ValueError(f"The {what} needs at least one layer.")
    return found


def _mlp(x, layers):
    for i, (kernel, bias) in enumerate(layers):
        x = x @ kernel + bias
        if i < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x


def from_dict(values):
    """The prior a `to_dict()` describes (its "kind" says which type)."""
    if values.get("kind") == TWO_STAGE:
        return TwoStagePrior.from_dict(values)
    return GaussianMixture.from_dict(values)


PRIOR_TYPES = (GaussianMixture, TwoStagePrior)


def standard_normal(latent_dim):
    """N(0, I) as a one-component mixture."""
    latent_dim = int(latent_dim)
    return GaussianMixture(
        [1.0], np.zeros((1, latent_dim)), np.eye(latent_dim)[None], kind=STANDARD
    )


def _logsumexp(values, axis):
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(values - top), axis=axis))


def _check_codes(codes, what, minimum):
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[1] < 1:
        raise ValueError(f"{what} must be [n, latent_dim]; got shape {codes.shape}.")
    if not np.all(np.isfinite(codes)):
        raise ValueError(f"{what} hold NaN or infinite values: fix the model or the images.")
    if len(codes) < minimum:
        raise ValueError(
            f"Too few {what}: {len(codes)}, need at least {minimum} for this prior over "
            f"{codes.shape[1]} dimensions. Encode more images, or fit fewer components."
        )
    return codes


def _floor(codes):
    return COVARIANCE_FLOOR * float(np.mean(np.var(codes, axis=0))) + 1e-12


def _covariance(codes):
    """The biased covariance `[d, d]` of `codes` `[n, d]`, also for d = 1 (where np.cov is 0-d)."""
    d = codes.shape[1]
    return np.cov(codes, rowvar=False, bias=True).reshape(d, d)


def _cholesky(covariance, floor):
    """Lower Cholesky factor of `covariance + floor * I` (symmetrized first)."""
    covariance = 0.5 * (covariance + covariance.T) + floor * np.eye(len(covariance))
    return np.linalg.cholesky(covariance)


def fit_gaussian(codes):
    """The full-covariance Gaussian of `codes` `[n, d]` (maximum likelihood, floored)."""
    start = time.perf_counter()
    codes = _check_codes(codes, "codes", codes_needed(1, np.shape(codes)[-1]))
    mean = codes.mean(axis=0)
    covariance = _covariance(codes)
    info = {"codes": len(codes), "seconds": round(time.perf_counter() - start, 3)}
    return GaussianMixture(
        [1.0], mean[None], _cholesky(covariance, _floor(codes))[None], kind=GAUSSIAN, info=info
    )


def codes_needed(components, latent_dim):
    """Fewest codes a fit of `components` full covariances in `latent_dim` accepts."""
    return components * (latent_dim + 1)


def _kmeans_plus_plus(codes, k, rng):
    """k seeds, each drawn with probability proportional to its squared distance."""
    centers = [codes[rng.integers(len(codes))]]
    distances = np.sum((codes - centers[0]) ** 2, axis=1)
    for _ in range(1, k):
        total = distances.sum()
        index = (
            rng.choice(len(codes), p=distances / total) if total > 0 else rng.integers(len(codes))
        )
        centers.append(codes[index])
        distances = np.minimum(distances, np.sum((codes - codes[index]) ** 2, axis=1))
    return np.array(centers)


def _outer(z):
    """Each code's outer product z z', flattened: `[n, d * d]`."""
    return (z[:, :, None] * z[:, None, :]).reshape(len(z), -1)


def _em_pass(codes, mixture):
    """One E-step over `codes` in chunks, accumulating the M-step's sufficient statistics.

    log N(z | m, S) = -0.5 (z'Pz - 2 z'Pm + m'Pm) - 0.5 log|2 pi S| with P the
    precision; z'Pz for every component is one matrix product of the codes'
    outer products `[n, d*d]` with the precisions `[d*d, k]`, which is what
    makes a 100-component fit take seconds instead of minutes.

    Returns:
        `(mean log-likelihood, counts [k], sums [k, d], outer sums [k, d, d])`.
    """
    k, d = mixture.components, mixture.latent_dim
    inverse = np.linalg.inv(mixture.cholesky)
    precision = np.swapaxes(inverse, 1, 2) @ inverse  # [k, d, d]
    precision_means = np.einsum("kij,kj->ki", precision, mixture.means)
    with np.errstate(divide="ignore"):
        constant = (
            np.log(mixture.weights)
            - np.sum(np.log(np.diagonal(mixture.cholesky, axis1=1, axis2=2)), axis=1)
            - 0.5 * d * _LOG_2PI
            - 0.5 * np.sum(precision_means * mixture.means, axis=1)
        )
    flat_precision = precision.reshape(k, d * d).T
    total, counts = 0.0, np.zeros(k)
    sums, outer_sums = np.zeros((k, d)), np.zeros((k, d * d))
    chunk = _chunk(d)
    for begin in range(0, len(codes), chunk):
        z = codes[begin : begin + chunk]
        outer = _outer(z)
        log_probs = constant - 0.5 * (outer @ flat_precision) + z @ precision_means.T
        totals = _logsumexp(log_probs, axis=1)
        responsibilities = np.exp(log_probs - totals[:, None])
        total += totals.sum()
        counts += responsibilities.sum(axis=0)
        sums += responsibilities.T @ z
        outer_sums += responsibilities.T @ outer
    return total / len(codes), counts, sums, outer_sums.reshape(k, d, d)


def _m_step(counts, sums, outer_sums, floor, fallback):
    """Mixture parameters from the sufficient statistics of `_em_pass`."""
    weights = (counts + 1e-12) / (counts.sum() + 1e-12 * len(counts))
    means = sums / np.maximum(counts, 1e-12)[:, None]
    cholesky = np.empty_like(outer_sums)
    for c in range(len(counts)):
        if counts[c] < 1.0:  # an empty component: restarted at its seed, the data's spread
            means[c], cholesky[c] = fallback[0][c], fallback[1]
            continue
        covariance = outer_sums[c] / counts[c] - np.outer(means[c], means[c])
        cholesky[c] = _cholesky(covariance, floor)
    return weights, means, cholesky


def fit_mixture(codes, components, seed=0, max_iterations=100, tolerance=1e-3):
    """A `components`-Gaussian mixture fitted to `codes` `[n, d]` by EM.

    Initialized from k-means++ seeds (drawn from `seed`, so the fit is
    deterministic) with hard assignments to the nearest seed, then EM until
    the mean log-likelihood gains less than `tolerance` nats per code.
    Covariances get `COVARIANCE_FLOOR` on the diagonal, so duplicate codes
    or a component with a single code cannot make them singular. The EM runs
    on centered codes (exact sufficient statistics in float64).
    """
    start = time.perf_counter()
    components = int(components)
    if components < 1:
        raise ValueError(f"components must be >= 1; got {components}.")
    codes = _check_codes(codes, "codes", codes_needed(components, np.shape(codes)[-1]))
    center = codes.mean(axis=0)
    centered = codes - center
    rng = np.random.default_rng(seed)
    floor = _floor(codes)
    seeds = _kmeans_plus_plus(centered, components, rng)
    fallback = (seeds, _cholesky(_covariance(centered), floor))
    nearest = np.argmin(np.sum(seeds**2, axis=1) - 2 * centered @ seeds.T, axis=1)
    hard = np.eye(components)[nearest]
    chunk = _chunk(codes.shape[1])
    outer_sums = sum(
        hard[begin : begin + chunk].T @ _outer(centered[begin : begin + chunk])
        for begin in range(0, len(codes), chunk)
    ).reshape(components, codes.shape[1], codes.shape[1])
    weights, means, cholesky = _m_step(
        hard.sum(axis=0), hard.T @ centered, outer_sums, floor, fallback
    )
    previous, history = -np.inf, []
    for _ in range(max_iterations):
        mixture = GaussianMixture(weights, means, cholesky, kind=GMM)
        mean_log_likelihood, *statistics = _em_pass(centered, mixture)
        history.append(float(mean_log_likelihood))
        if mean_log_likelihood - previous < tolerance:
            break
        previous = mean_log_likelihood
        weights, means, cholesky = _m_step(*statistics, floor, fallback)
    mixture = GaussianMixture(mixture.weights, mixture.means + center, mixture.cholesky, kind=GMM)
    mixture.info = {
        "codes": len(codes),
        "components": components,
        "iterations": len(history),
        "train_log_likelihood": float(mean_log_likelihood),
        "seconds": round(time.perf_counter() - start, 3),
    }
    mixture.history = history
    return mixture


def fit_gmm(
    codes,
    validation_codes=None,
    components=None,
    candidates=COMPONENT_CANDIDATES,
    seed=0,
    max_codes=MAX_FIT_CODES,
):
    """A Gaussian mixture fitted to `codes`, its size chosen on held-out codes.

    Args:
        codes: `[n, d]` training codes (posterior means or samples).
        validation_codes: `[m, d]` held-out codes that choose the number of
            components (the best mean log-likelihood wins). `None` holds out
            a seeded 10% of `codes` instead.
        components: fit exactly this many; `None` chooses among `candidates`
            (those the codes are enough for).
        seed: seeds the subset, the held-out split and the EM.
        max_codes: the EM fits at most this many codes (a seeded subset).

    Returns:
        A `GaussianMixture` of kind "gmm"; its `info` records each
        candidate's held-out log-likelihood and the time taken.
    """
    start = time.perf_counter()
    codes = _check_codes(codes, "codes", 2)
    rng = np.random.default_rng(seed)
    if validation_codes is None:
        order = rng.permutation(len(codes))
        held_out = max(1, len(codes) // 10)
        codes, validation_codes = codes[order[held_out:]], codes[order[:held_out]]
    validation_codes = _check_codes(validation_codes, "validation codes", 1)
    if validation_codes.shape[1] != codes.shape[1]:
        raise ValueError(
            f"validation codes are {validation_codes.shape[1]}-D but the codes are "
            f"{codes.shape[1]}-D."
        )
    if len(codes) > max_codes:
        codes = codes[np.sort(rng.choice(len(codes), max_codes, replace=False))]
    if components is not None:
        tried = [int(components)]
    else:
        tried = [k for k in candidates if len(codes) >= codes_needed(k, codes.shape[1])]
        if not tried:
            raise ValueError(
                f"Too few codes: {len(codes)}, need at least "
                f"{codes_needed(min(candidates), codes.shape[1])} for a mixture over "
                f"{codes.shape[1]} dimensions. Encode more images."
            )
    scores, best = {}, None
    for k in tried:
        mixture = fit_mixture(codes, k, seed=seed)
        scores[k] = float(mixture.log_prob(validation_codes).mean())
        if best is None or scores[k] > scores[best.components]:
            best = mixture
    best.info.update(
        {
            "validation_codes": len(validation_codes),
            "validation_log_likelihood": scores,
            "chosen_by": "given" if components is not None else "validation log-likelihood",
            "seconds": round(time.perf_counter() - start, 3),
        }
    )
    return best


def fit_per_class(
    kind,
    codes,
    classes,
    num_classes,
    validation_codes=None,
    validation_classes=None,
    class_names=None,
    **options,
):
    """A prior per class: `kind` ("gaussian" or "gmm") fitted to the codes of each class.

    A conditional VAE's codes still say much of the class; decoding a code of
    another class's region with a label gives neither. Drawing z from the
    codes of the label's own class does (`GaussianMixture.label_weights`).

    Args:
        codes: `[n, d]`; `classes`: int `[n]`, the class of each, in
            `range(num_classes)`, each class present.
        validation_codes, validation_classes: held-out codes choosing each
            class's number of components (`fit_gmm`'s), among the
            `COMPONENT_CANDIDATES` that keep the whole mixture within the
            largest of them (1 or 5 per class for 10 classes): the export
            and the explorer carry every component.
        class_names: what an error calls each class (default: its index).
        **options: `fit_gmm`'s `components` (per class) and `seed`.

    Returns:
        One `GaussianMixture` of every class's components, with their
        `label_weights`; its `weights` are the class frequencies times them.
    """
    start = time.perf_counter()
    classes = np.asarray(classes)
    parts, counts = [], np.bincount(classes, minlength=num_classes)
    largest = max(COMPONENT_CANDIDATES)
    candidates = tuple(k for k in COMPONENT_CANDIDATES if k * num_classes <= largest) or (1,)
    for k in range(num_classes):
        name = k if class_names is None else repr(class_names[k])
        if not counts[k]:
            raise ValueError(f"Class {name} has no codes: a prior per class needs each one.")
        held_out = None
        if validation_codes is not None and np.any(validation_classes == k):
            held_out = validation_codes[validation_classes == k]
        mine = codes[classes == k]
        try:
            parts.append(
                fit_gaussian(mine)
                if kind == GAUSSIAN
                else fit_gmm(mine, held_out, candidates=candidates, **options)
            )
        except ValueError as error:
            raise ValueError(f"Class {name}: {error}") from None
    sizes = [part.components for part in parts]
    label_weights = np.zeros((num_classes, sum(sizes)))
    for k, (part, first) in enumerate(zip(parts, np.cumsum([0, *sizes[:-1]]), strict=True)):
        label_weights[k, first : first + part.components] = part.weights
    frequencies = counts / counts.sum()
    info = {
        "per_class": True,
        "codes": int(len(codes)),
        "class_components": sizes,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return GaussianMixture(
        frequencies @ label_weights,
        np.concatenate([part.means for part in parts]),
        np.concatenate([part.cholesky for part in parts]),
        kind=kind,
        info=info,
        label_weights=label_weights,
    )


def fit(kind, codes, validation_codes=None, components=None, seed=0):
    """The prior `kind` ("standard", "gaussian" or "gmm") fitted to `codes` `[n, d]`."""
    names.check_choice("prior", kind, names.PRIORS)
    if kind == VAMP:
        raise ValueError(
            "The vamp prior is learned with the model (VAE(learned_prior='vamp')), not "
            "fitted to codes."
        )
    if kind == TWO_STAGE:
        raise ValueError(
            "The two_stage prior is a network trained on the codes: "
            "keras_vae.generation.fit_two_stage(codes) makes it."
        )
    if kind == STANDARD:
        return standard_normal(np.shape(codes)[-1])
    if kind == GAUSSIAN:
        return fit_gaussian(codes)
    return fit_gmm(codes, validation_codes, components=components, seed=seed)
