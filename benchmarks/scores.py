"""Scores of generated images by a classifier, shared by the latent and prior benchmarks.

A small CNN trained on the dataset's labels is the yardstick (`train_classifier`
gives it as a batched `judge`: images -> (class probabilities `[N, K]`,
128 features `[N, F]`)); the scores are plain numpy on what it returns:
`confident_share`, `class_entropy`, `frechet_distance`; and, on the images
themselves, `step_unevenness` of interpolation paths and `pixel_distance`.
"""

import numpy as np

# The class probability at or above which an image counts as a confident one.
CONFIDENCE = 0.9


def build_classifier(image_shape, num_classes):
    """A small CNN; its 128-unit `features` layer feeds the Frechet distance."""
    import keras

    images = keras.Input(shape=image_shape)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same")(images)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(64, 3, activation="relu", padding="same")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.3)(x)
    features = keras.layers.Dense(128, activation="relu", name="features")(x)
    probabilities = keras.layers.Dense(num_classes, activation="softmax")(features)
    return keras.Model(images, [probabilities, features], name="classifier")


def make_judge(classifier, batch_size=500):
    """The trained classifier, compiled and batched: images -> (probabilities, features)."""
    from keras_vae import generation

    return generation.BatchedFunction(
        lambda x: tuple(classifier(x, training=False)), classifier.input_shape[1:], batch_size
    )


def train_classifier(train, test, epochs, seed):
    """Trains the CNN on `train = (images, labels)`; returns `(judge, test accuracy)`."""
    import keras

    from keras_vae.datasets import pipeline

    (x_train, y_train), (x_test, y_test) = train, test
    classifier = build_classifier(x_train.shape[1:], int(y_train.max()) + 1)
    probabilities = keras.Model(classifier.input, classifier.outputs[0])
    probabilities.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    dataset = pipeline.make_dataset(x_train, y_train, batch_size=128, shuffle=True, seed=seed)
    probabilities.fit(dataset, epochs=epochs, verbose=0, shuffle=False)
    judge = make_judge(classifier)
    accuracy = float(np.mean(judge(x_test)[0].argmax(axis=1) == y_test))
    return judge, accuracy


def sample_scores(judge, images, test_features):
    """`confident_share` and `frechet_distance` (to `test_features`) of generated `images`."""
    probabilities, features = judge(images)
    return {
        "confident_share": confident_share(probabilities, CONFIDENCE),
        "frechet_distance": frechet_distance(features, test_features),
    }


def confident_share(probabilities, threshold=CONFIDENCE):
    """Share of rows whose largest class probability is >= `threshold`."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(
            f"probabilities must be [N, classes] with N > 0; got {probabilities.shape}."
        )
    return float(np.mean(probabilities.max(axis=1) >= threshold))


def class_entropy(probabilities):
    """Entropy (nats) of the histogram of predicted classes."""
    counts = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])
    shares = counts[counts > 0] / counts.sum()
    return float(-(shares * np.log(shares)).sum())


def _sqrt_psd(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets `[N, F]`.

    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), the FID
    formula, in squared feature units; 0 for identical statistics.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"features must be [N, F] with the same F and N >= 2; got {a.shape} and {b.shape}."
        )
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    mean_gap = np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
    return float(mean_gap + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


def step_unevenness(paths, over="path"):
    """Largest single-step pixel change over the whole path's change, per path.

    Args:
        paths: images `[num_paths, points, H, W, C]`, each path from its first
            to its last image.
        over: what "the whole path's change" is. "path": the sum of the step
            changes (the path's length in pixel space); "ends": the change
            from the first image to the last. Both give 1/(points-1) for
            equal steps on a straight line; "ends" also counts detours
            against a path (steps that wander away and come back).

    Returns:
        float `[num_paths]`, at least 1/(points-1) (perfectly even) and, for
        `over="path"`, at most 1 (one step does all the change). Paths whose
        denominator is zero give NaN.
    """
    if over not in ("path", "ends"):
        raise ValueError(f"over must be 'path' or 'ends'; got {over!r}.")
    paths = np.asarray(paths, dtype=np.float64)
    if paths.ndim < 3 or paths.shape[1] < 2:
        raise ValueError(f"paths must be [num_paths, points >= 2, ...]; got {paths.shape}.")
    flat = paths.reshape(paths.shape[0], paths.shape[1], -1)
    lengths = np.linalg.norm(np.diff(flat, axis=1), axis=-1)
    if over == "path":
        totals = lengths.sum(axis=1)
    else:
        totals = np.linalg.norm(flat[:, -1] - flat[:, 0], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, lengths.max(axis=1) / totals, np.nan)


def pixel_distance(images_a, images_b):
    """Pixel L2 distance between paired images `[N, H, W, C]`, float `[N]`."""
    a = np.asarray(images_a, dtype=np.float64)
    b = np.asarray(images_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Paired images must have the same shape; got {a.shape} and {b.shape}.")
    return np.linalg.norm((a - b).reshape(len(a), -1), axis=1)
