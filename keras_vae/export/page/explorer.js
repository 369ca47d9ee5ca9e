// The latent explorer: a run's exported generator, run in the browser by
// LiteRT.js. Loads model/generator.json and the static-shape .tflite files
// next to it; nothing but this page's own static server is ever called.
import {isWebGPUSupported, loadAndCompile, loadLiteRt, Tensor} from '@litertjs/core';

import {interpolate, moveAlong, normalDraws, samplePrior} from './latent.js';

const MODEL_DIR = 'model/';
const GRID_SIDE = 4; // tiles on each side of the grid
const GRID = GRID_SIDE * GRID_SIDE; // 4 x 4 samples: the batch of the largest static file
const STRIP = 8; // frames of the morph strip
const SLIDERS = 6; // main directions with a slider
const ATTRIBUTE_SLIDERS = 12; // named attribute directions with a slider, the longest vectors
const EVERY_LABEL = 10; // a conditional generator's labels in the "same z, every class" rows

// The `count` longest attribute vectors of generator.json's "attribute_directions"
// (none without it), in their order there.
function strongestAttributes(named, count) {
  if (!named) return {names: [], vectors: []};
  const norms = named.vectors.map((v) => Math.hypot(...v));
  const kept = norms
    .map((norm, k) => [norm, k])
    .sort((a, b) => b[0] - a[0])
    .slice(0, count)
    .map(([, k]) => k)
    .sort((a, b) => a - b);
  return {names: kept.map((k) => named.names[k]), vectors: kept.map((k) => named.vectors[k])};
}
const SCALE = 4; // screen pixels per image pixel

const params = new URLSearchParams(location.search);

// A vector of `size` zeros with a 1 at `index` (none for index -1).
function oneHot(size, index) {
  const vector = new Float32Array(size);
  if (index >= 0) vector[index] = 1;
  return vector;
}
const $ = (id) => document.getElementById(id);

// A batch-static generator: the `generate` signature of each
// generator_{variant}_b{batch}.tflite, batched and padded as needed. A
// conditional one (generator.json's "conditioning") takes a label vector per code.
class Generator {
  constructor(metadata, models, priorModels = []) {
    this.metadata = metadata;
    this.models = models; // [{batch, model, facts}] by batch, largest first
    this.priorModels = priorModels; // a two-stage prior's networks, the same way
    this.latentDim = metadata.latent_dim;
    this.labelNames = metadata.conditioning ? metadata.conditioning.names : [];
    [this.height, this.width, this.channels] = metadata.image_shape;
  }

  static async load(metadata, variant, accelerator) {
    const files = Object.values(metadata.artifacts).filter(
      (facts) => facts.layout === 'static' && facts.variant === variant,
    );
    if (!files.length) {
      const variants = [
        ...new Set(Object.values(metadata.artifacts).filter((f) => f.layout === 'static').map((f) => f.variant)),
      ];
      throw new Error(
        variants.length
          ? `This export has no static-shape "${variant}" file; ?variant= can be ${variants.join(', ')}.`
          : 'This export has no static-shape .tflite files (made before they existed, or with ' +
              '--static-batch-sizes and none): export the run again with ' +
              '`keras-vae export --model RUN --overwrite`.',
      );
    }
    const models = await loadModels(files, accelerator);
    const priorFiles = Object.values(metadata.prior_artifacts || {});
    return new Generator(metadata, models, await loadModels(priorFiles, accelerator));
  }

  // A two-stage prior's codes: eps (Float32Array[] of latent_dim) -> z, by its static files.
  async priorCodes(eps) {
    const codes = [];
    await runBatched(this.priorModels, [{name: 'eps', rows: eps, width: this.latentDim}], async (outputs, used) => {
      const z = await outputs.z.data();
      for (let i = 0; i < used; i++) {
        codes.push(Float32Array.from(z.subarray(i * this.latentDim, (i + 1) * this.latentDim)));
      }
    });
    return codes;
  }

  // codes: Float32Array[] -> {images: Float32Array[], pixels: Uint8Array[]}, one per code;
  // a conditional generator's `labels` (Float32Array[] of its label vectors) go with them.
  async decode(codes, labels = null) {
    const images = [];
    const pixels = [];
    const size = this.height * this.width * this.channels;
    const inputs = [{name: 'z', rows: codes, width: this.latentDim}];
    if (this.labelNames.length) {
      if (!labels || labels.length !== codes.length) throw new Error('A conditional generator needs a label per code.');
      inputs.push({name: 'label', rows: labels, width: this.labelNames.length});
    }
    await runBatched(this.models, inputs, async (outputs, used) => {
      const flat = await outputs.images.data();
      const bytes = await outputs.pixels.data();
      for (let i = 0; i < used; i++) {
        images.push(Float32Array.from(flat.subarray(i * size, (i + 1) * size)));
        pixels.push(Uint8Array.from(bytes.subarray(i * size, (i + 1) * size)));
      }
    });
    return {images, pixels};
  }
}

// Runs `inputs` ([{name, rows: Float32Array[] of `width` values, width}], as many
// rows each) through batch-static `models`, as many calls as needed: each the
// smallest file that takes the rows left in one call (padded with zeros), else the
// largest (1 row -> b1, 8 -> b16, 20 -> b16 twice). `take(outputs, used)` reads a
// call's output tensors, of which `used` rows count.
async function runBatched(models, inputs, take) {
  const count = inputs[0].rows.length;
  for (let start = 0; start < count; ) {
    const left = count - start;
    const {batch, model} = models.filter((m) => m.batch >= left).at(-1) || models[0];
    const used = Math.min(batch, left);
    const tensors = {};
    let outputs = {};
    try {
      for (const {name, rows, width} of inputs) {
        const values = new Float32Array(batch * width);
        for (let i = 0; i < used; i++) values.set(rows[start + i], i * width);
        tensors[name] = new Tensor(values, [batch, width]);
      }
      outputs = await model.run(tensors);
      await take(outputs, used);
    } finally {
      Object.values(tensors).forEach((tensor) => tensor.delete());
      Object.values(outputs).forEach((output) => output.delete());
    }
    start += used;
  }
}

// The static .tflite files of `files` (generator.json facts), compiled, largest batch first.
async function loadModels(files, accelerator) {
  const models = [];
  for (const facts of [...files].sort((a, b) => b.batch - a.batch)) {
    const url = MODEL_DIR + facts.path;
    const response = await fetch(url);
    if (!response.ok) {
      throw new Error(`Could not load ${url}: HTTP ${response.status} ${response.statusText}.`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    try {
      models.push({batch: facts.batch, facts, model: await loadAndCompile(bytes, {accelerator})});
    } catch (error) {
      throw new Error(`${url} is not a LiteRT model this page can run (${error.message || error}).`);
    }
  }
  return models;
}

// Draws uint8 pixels (H x W x C, C = 1 or 3) at (x, y) of a canvas, SCALE x larger.
function draw(canvas, pixels, shape, x = 0, y = 0) {
  const [height, width, channels] = shape;
  const image = new ImageData(width, height);
  for (let p = 0; p < width * height; p++) {
    for (let k = 0; k < 3; k++) image.data[4 * p + k] = pixels[p * channels + (channels === 3 ? k : 0)];
    image.data[4 * p + 3] = 255;
  }
  const tile = new OffscreenCanvas(width, height);
  tile.getContext('2d').putImageData(image, 0, 0);
  const context = canvas.getContext('2d');
  context.imageSmoothingEnabled = false;
  context.drawImage(tile, x, y, width * SCALE, height * SCALE);
}

class Explorer {
  constructor(generator) {
    this.generator = generator;
    this.metadata = generator.metadata;
    this.shape = this.metadata.image_shape;
    this.seed = Number(params.get('seed') || 0);
    this.codes = [];
    this.picked = [];
    this.amounts = new Array(Math.min(SLIDERS, this.metadata.latent_directions.scales.length)).fill(0);
    this.attributes = strongestAttributes(this.metadata.attribute_directions, ATTRIBUTE_SLIDERS);
    this.attributeAmounts = new Array(this.attributes.names.length).fill(0);
    this.lastGrid = null;
    // A conditional generator's label: one class (a one-hot vector), or the attributes ticked.
    this.conditioning = this.metadata.conditioning || null;
    this.label = this.conditioning ? oneHot(this.conditioning.names.length, this.conditioning.label_type === 'class' ? 0 : -1) : null;
  }

  // The current label for each of `count` codes (null for an unconditional generator).
  labels(count) {
    return this.label ? Array.from({length: count}, () => this.label) : null;
  }

  decode(codes) {
    return this.generator.decode(codes, this.labels(codes.length));
  }

  // Runs UI updates one after the other, so a slow decode never draws over a newer one.
  schedule(task) {
    this.queue = (this.queue || Promise.resolve()).then(task).catch((error) => showError(error, false));
    return this.queue;
  }

  tileSize() {
    return [this.shape[1] * SCALE, this.shape[0] * SCALE];
  }

  setUp() {
    const [w, h] = this.tileSize();
    $('grid').width = GRID_SIDE * w;
    $('grid').height = GRID_SIDE * h;
    $('strip').width = STRIP * w;
    $('strip').height = h;
    for (const id of ['morph', 'explore', 'pick-a', 'pick-b']) {
      $(id).width = w;
      $(id).height = h;
    }
    $('grid').addEventListener('click', (event) => {
      const index = this.tileAt(event); // read now: the queue may run it after a scroll
      this.schedule(() => this.pick(index));
    });
    $('resample').addEventListener('click', () => this.schedule(() => this.resample(this.seed + 1)));
    $('t').addEventListener('input', () => this.schedule(() => this.morph()));
    $('method').addEventListener('change', () => this.schedule(() => this.showPicks()));
    $('reset').addEventListener('click', () => this.schedule(() => this.resetSliders()));
    this.amounts.forEach((_, k) => {
      const scale = this.metadata.latent_directions.scales[k].toFixed(2);
      this.addSlider(`direction ${k + 1} (std ${scale})`, `direction-${k}`, 3, this.amounts, k);
    });
    this.attributes.names.forEach((name, k) => this.addSlider(name, `attribute-${k}`, 2, this.attributeAmounts, k));
    if (this.conditioning) this.setUpLabels();
  }

  // The class picker (or one box per attribute) and the "same z, every class" rows.
  setUpLabels() {
    const {names, label_type: type} = this.conditioning;
    const box = $('labels');
    if (type === 'class') {
      const select = document.createElement('select');
      select.id = 'label';
      select.setAttribute('aria-label', 'class');
      names.forEach((name, k) => select.add(new Option(name, k)));
      select.addEventListener('change', () => {
        this.label = oneHot(names.length, Number(select.value));
        this.schedule(() => this.resample(this.seed));
      });
      const label = document.createElement('label');
      label.append('Class ', select);
      box.appendChild(label);
    } else {
      names.forEach((name, k) => {
        const label = document.createElement('label');
        const check = Object.assign(document.createElement('input'), {type: 'checkbox', id: `label-${k}`});
        check.addEventListener('change', () => {
          this.label = Float32Array.from(this.label, (value, j) => (j === k ? Number(check.checked) : value));
          this.schedule(() => this.resample(this.seed));
        });
        label.append(check, ` ${name}`);
        box.appendChild(label);
      });
    }
    box.hidden = false;
    const [w, h] = this.tileSize();
    $('every-label').width = Math.min(EVERY_LABEL, names.length) * w;
    $('every-label').height = 2 * h;
    $('every-label-section').hidden = false;
  }

  // Picks A and B, each drawn as every label (the first EVERY_LABEL): style kept, class changed.
  async showEveryLabel() {
    const count = Math.min(EVERY_LABEL, this.conditioning.names.length);
    const each = Array.from({length: count}, (_, k) => oneHot(this.conditioning.names.length, k));
    const codes = this.picked.flatMap((index) => each.map(() => this.codes[index]));
    const decoded = await this.generator.decode(codes, [...each, ...each]);
    const [w, h] = this.tileSize();
    decoded.pixels.forEach((pixels, i) => draw($('every-label'), pixels, this.shape, (i % count) * w, Math.floor(i / count) * h));
    this.everyLabel = decoded;
  }

  // A labelled slider from -limit to limit that sets amounts[k] and moves the morph.
  addSlider(text, id, limit, amounts, k) {
    const label = document.createElement('label');
    label.textContent = `${text} `;
    const slider = document.createElement('input');
    Object.assign(slider, {type: 'range', min: -limit, max: limit, step: 0.05, value: 0, id});
    slider.addEventListener('input', () => {
      amounts[k] = Number(slider.value);
      this.schedule(() => this.explore());
    });
    label.appendChild(slider);
    $('sliders').appendChild(label);
  }

  // A new GRID_SIDE x GRID_SIDE grid of codes from the run's prior.
  async resample(seed) {
    this.seed = seed;
    if (this.metadata.latent_prior.kind === 'two_stage') {
      // The second VAE's decoder (prior_float32_b*.tflite) turns eps into codes.
      this.eps = normalDraws(GRID, this.metadata.latent_dim, seed);
      return this.showGrid(await this.generator.priorCodes(this.eps));
    }
    // A prior fitted per class draws the codes of the chosen class.
    return this.showGrid(samplePrior(this.metadata.latent_prior, GRID, seed, null, this.label));
  }

  async showGrid(codes) {
    this.codes = codes;
    const decoded = await this.decode(codes);
    const [w, h] = this.tileSize();
    decoded.pixels.forEach((pixels, i) => draw($('grid'), pixels, this.shape, (i % GRID_SIDE) * w, Math.floor(i / GRID_SIDE) * h));
    this.lastGrid = decoded;
    this.picked = [0, 1];
    await this.showPicks();
    return decoded;
  }

  // The grid tile under a click: offsetX/Y are relative to the padding box
  // (inside the border), scaled from CSS pixels to canvas pixels.
  tileAt(event) {
    const canvas = $('grid');
    const [w, h] = this.tileSize();
    const x = (event.offsetX * canvas.width) / canvas.clientWidth;
    const y = (event.offsetY * canvas.height) / canvas.clientHeight;
    const clamp = (value) => Math.min(GRID_SIDE - 1, Math.max(0, Math.floor(value)));
    return clamp(y / h) * GRID_SIDE + clamp(x / w);
  }

  async pick(index) {
    // Clicks alternate between A and B.
    this.picked = this.nextIsB ? [this.picked[0], index] : [index, this.picked[1]];
    this.nextIsB = !this.nextIsB;
    await this.showPicks();
  }

  // Frames the picked tiles on the grid; positions in % of the grid's box (1 px border).
  markPicks() {
    this.picked.forEach((index, k) => {
      const mark = $(k === 0 ? 'mark-a' : 'mark-b');
      const size = `calc((100% - 2px) / ${GRID_SIDE})`;
      Object.assign(mark.style, {
        left: `calc(1px + ${index % GRID_SIDE} * ${size})`,
        top: `calc(1px + ${Math.floor(index / GRID_SIDE)} * ${size})`,
        width: size,
        height: size,
      });
      mark.dataset.tile = index;
      mark.hidden = false;
    });
  }

  async showPicks() {
    const [a, b] = this.picked;
    this.markPicks();
    draw($('pick-a'), this.lastGrid.pixels[a], this.shape);
    draw($('pick-b'), this.lastGrid.pixels[b], this.shape);
    const steps = Array.from({length: STRIP}, (_, i) => i / (STRIP - 1));
    const path = steps.map((t) => interpolate(this.codes[a], this.codes[b], t, $('method').value));
    const decoded = await this.decode(path);
    const [w] = this.tileSize();
    decoded.pixels.forEach((pixels, i) => draw($('strip'), pixels, this.shape, i * w, 0));
    if (this.conditioning) await this.showEveryLabel();
    await this.morph();
  }

  // The code at the slider's t between A and B, then moved along the sliders' directions.
  async morph() {
    const [a, b] = this.picked;
    const t = Number($('t').value);
    $('t-value').textContent = t.toFixed(2);
    this.base = interpolate(this.codes[a], this.codes[b], t, $('method').value);
    const {pixels} = await this.decode([this.base]);
    draw($('morph'), pixels[0], this.shape);
    this.morphPixels = pixels[0];
    await this.explore();
  }

  async explore() {
    const moved = moveAlong(this.base, this.metadata.latent_directions, this.amounts);
    // Attribute sliders add amount x the attribute's vector (scale 1).
    const named = {directions: this.attributes.vectors, scales: this.attributes.vectors.map(() => 1)};
    const z = moveAlong(moved, named, this.attributeAmounts);
    const {pixels} = await this.decode([z]);
    draw($('explore'), pixels[0], this.shape);
    this.explored = z;
  }

  async resetSliders() {
    this.amounts.fill(0);
    this.attributeAmounts.fill(0);
    document.querySelectorAll('#sliders input').forEach((slider) => (slider.value = 0));
    await this.explore();
  }
}

function describe(metadata, variant, generator) {
  // What LiteRT.js compiled for, which may be WASM after asking for WebGPU.
  const accelerator = generator.models[0].model.options.accelerator;
  const prior = metadata.latent_prior;
  const priorText = {
    standard: 'N(0, I)',
    two_stage: 'two-stage VAE (a second VAE on the codes)',
    vamp: `VampPrior learned with the model, ${prior.components} components`,
  }[prior.kind] || `fitted ${prior.kind}, ${prior.components} component(s)`;
  const conditioning = metadata.conditioning;
  const labels = conditioning ? `, conditional on ${conditioning.names.length} ${conditioning.label_type === 'class' ? 'classes' : 'attributes'}` : '';
  return (
    `${metadata.dataset || 'unknown dataset'}, preset ${metadata.preset || '?'}, ` +
    `${metadata.latent_dim}-D codes${labels}, prior: ${priorText}; ` +
    `generator_${variant}_b* on LiteRT.js (${accelerator})`
  );
}

// A load error replaces the page (state "error"); a later one is shown above it.
function showError(error, starting = true) {
  const message = error && error.message ? error.message : String(error);
  $('error').textContent = `${starting ? 'The explorer could not start' : 'The explorer failed'}: ${message}`;
  $('error').hidden = false;
  if (starting) document.body.dataset.state = 'error';
}

async function main() {
  const variant = params.get('variant') || 'float32';
  const wanted = params.get('accelerator') || 'wasm';
  const accelerator = wanted === 'webgpu' && !isWebGPUSupported() ? 'wasm' : wanted;
  const response = await fetch(MODEL_DIR + 'generator.json');
  if (!response.ok) {
    throw new Error(`Could not load ${MODEL_DIR}generator.json: HTTP ${response.status}. Build the page with keras-vae web.`);
  }
  let metadata;
  try {
    metadata = await response.json();
  } catch (error) {
    throw new Error(`${MODEL_DIR}generator.json is not valid JSON (${error.message}).`);
  }
  await loadLiteRt('litert/wasm/');
  const generator = await Generator.load(metadata, variant, accelerator);
  $('about').textContent = describe(metadata, variant, generator);
  const explorer = new Explorer(generator);
  explorer.setUp();
  await explorer.resample(explorer.seed);
  return explorer;
}

// For tests and the console: window.explorer resolves to the Explorer (or
// rejects with the error the page shows).
window.explorer = main().then(
  (explorer) => {
    document.body.dataset.state = 'ready';
    return explorer;
  },
  (error) => {
    showError(error);
    throw error;
  },
);
window.explorer.catch(() => {}); // shown on the page; no unhandled rejection
