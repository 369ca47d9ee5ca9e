// Latent-space arithmetic of the explorer, the same as keras_vae.generation.latent and
// keras_vae.models.priors in Python. Codes are plain Float32Arrays of latent_dim.

// A seeded uniform generator in [0, 1) (mulberry32): the same seed, the same grid.
export function uniformGenerator(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normalGenerator(uniform) {
  return () => {
    // Box-Muller; 1 - u keeps the logarithm finite.
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    return radius * Math.cos(2 * Math.PI * uniform());
  };
}

// `count` draws of eps ~ N(0, I) of `dim` values each: a two-stage prior's input.
export function normalDraws(count, dim, seed) {
  const normal = normalGenerator(uniformGenerator(seed));
  return Array.from({length: count}, () => Float32Array.from({length: dim}, normal));
}

// `count` codes from generator.json's latent_prior: pick component c with
// probability weights[c], then z = means[c] + cholesky[c] @ eps, eps ~ N(0, I).
// A prior per class (label_weights) given a `label` (a one-hot Float32Array)
// takes that class's weights. With `components` (an array), also records each
// code's component there.
export function samplePrior(prior, count, seed, components = null, label = null) {
  const uniform = uniformGenerator(seed);
  const normal = normalGenerator(uniform);
  const dim = prior.latent_dim;
  let weights = prior.weights;
  if (label && prior.label_weights) {
    weights = weights.map((_, c) => prior.label_weights.reduce((sum, row, y) => sum + label[y] * row[c], 0));
  }
  const codes = [];
  for (let n = 0; n < count; n++) {
    let c = 0;
    for (let u = uniform(), total = weights[0]; u >= total && c < weights.length - 1; ) {
      c += 1;
      total += weights[c];
    }
    const eps = Array.from({length: dim}, normal);
    const z = new Float32Array(dim);
    for (let i = 0; i < dim; i++) {
      let value = prior.means[c][i];
      for (let j = 0; j <= i; j++) value += prior.cholesky[c][i][j] * eps[j];
      z[i] = value;
    }
    codes.push(z);
    if (components) components.push(c);
  }
  return codes;
}

function norm(z) {
  return Math.sqrt(z.reduce((sum, value) => sum + value * value, 0));
}

// The code at t in [0, 1] on the path from a to b. "lerp": the straight line;
// "slerp": the direction turns along the great circle while the norm goes
// linearly, as keras_vae.generation.latent.interpolate (parallel or zero codes: lerp).
export function interpolate(a, b, t, method) {
  const out = new Float32Array(a.length);
  const normA = norm(a);
  const normB = norm(b);
  let angle = 0;
  if (method === 'slerp' && normA > 0 && normB > 0) {
    const cosine = a.reduce((sum, value, i) => sum + value * b[i], 0) / (normA * normB);
    angle = Math.acos(Math.min(1, Math.max(-1, cosine)));
  }
  if (Math.sin(angle) < 1e-6) {
    for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
    return out;
  }
  const scale = ((1 - t) * normA + t * normB) / Math.sin(angle);
  const wa = Math.sin((1 - t) * angle) / normA;
  const wb = Math.sin(t * angle) / normB;
  for (let i = 0; i < a.length; i++) out[i] = scale * (wa * a[i] + wb * b[i]);
  return out;
}

// z + sum_k amounts[k] * scales[k] * directions[k]: amounts in standard
// deviations of the training codes along each main direction.
export function moveAlong(z, latentDirections, amounts) {
  const out = Float32Array.from(z);
  amounts.forEach((amount, k) => {
    const step = amount * latentDirections.scales[k];
    latentDirections.directions[k].forEach((value, i) => {
      out[i] += step * value;
    });
  });
  return out;
}
