// Drives the latent explorer page in headless Chromium (puppeteer-core and
// the system's chromium) and prints what it saw as one JSON object.
//
//   node tests/browser_check.mjs URL [Z.json]   load, decode Z.json's codes
//       through the page's generator and its grid, move the sliders
//   node tests/browser_check.mjs URL --bench    median latency per batch
//   node tests/browser_check.mjs URL --screenshot PNG   README's picture
//   node tests/browser_check.mjs URL --math CASE.json    latent.js on CASE's codes
//   node tests/browser_check.mjs URL --layout W1,W2,... [PREFIX]   boxes of the
//       page's parts at each window width (and screenshots PREFIX-W.png)
//   node tests/browser_check.mjs URL --result   a page that sets window.result
//
// Exit status 0 whenever the page was reached, also when it showed an error:
// the JSON says what happened and the Python test judges it.
import {readFileSync} from 'node:fs';

import puppeteer from 'puppeteer-core';

const [url, second, third] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const result = {console_errors: [], page_errors: []};
try {
  const page = await browser.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') result.console_errors.push(message.text());
  });
  page.on('pageerror', (error) => result.page_errors.push(String(error)));
  page.on('requestfailed', (request) => result.console_errors.push(`request failed: ${request.url()}`));
  page.on('response', (response) => {
    if (response.status() >= 400) result.http_errors = [...(result.http_errors || []), `${response.status()} ${response.url()}`];
  });
  await page.goto(url, {waitUntil: 'load'});
  if (second === '--result') {
    // Any page that ends by setting window.result (README snippets): its value, or what failed.
    try {
      await page.waitForFunction(() => window.result !== undefined, {timeout: 60000});
      result.result = await page.evaluate(() => window.result);
    } catch (error) {
      result.timeout = String(error);
    }
    await browser.close();
    console.log(JSON.stringify(result));
    process.exit(0);
  }
  await page.waitForFunction(() => document.body.dataset.state !== 'loading', {timeout: 60000});
  // What a reader sees: elements with a box on the page.
  result.visible = await page.evaluate(() =>
    Object.fromEntries(
      ['about', 'error', 'grid', 'morph', 'strip'].map((id) => [id, document.getElementById(id).getClientRects().length > 0]),
    ),
  );
  result.state = await page.evaluate(() => document.body.dataset.state);
  result.error_text = await page.evaluate(() => (document.getElementById('error').hidden ? '' : document.getElementById('error').textContent));
  result.about = await page.evaluate(() => document.getElementById('about').textContent);
  if (result.state === 'ready' && second === '--math') {
    const request = JSON.parse(readFileSync(third, 'utf8'));
    result.math = await page.evaluate(async (request) => {
      const latent = await import('./latent.js');
      const metadata = (await window.explorer).metadata;
      const components = [];
      const drawn = latent.samplePrior(metadata.latent_prior, request.count, request.seed, components);
      const [a, b] = request.endpoints.map((z) => Float32Array.from(z));
      const paths = {};
      for (const method of ['lerp', 'slerp']) {
        paths[method] = request.ts.map((t) => Array.from(latent.interpolate(a, b, t, method)));
      }
      const moved = latent.moveAlong(a, metadata.latent_directions, request.amounts);
      return {z: drawn.map((z) => Array.from(z)), components, paths, moved: Array.from(moved)};
    }, request);
  } else if (result.state === 'ready' && second === '--screenshot') {
    await page.setViewport({width: 1280, height: 760});
    await page.evaluate(async () => {
      const explorer = await window.explorer;
      explorer.picked = [2, 13];
      await explorer.showPicks();
      for (const [id, value] of [['t', 0.4], ['direction-0', 1.5], ['direction-2', -1]]) {
        const slider = document.getElementById(id);
        if (!slider) continue; // fewer main directions than sliders
        slider.value = value;
        slider.dispatchEvent(new Event('input'));
      }
      await explorer.queue;
    });
    await page.screenshot({path: third, fullPage: true});
  } else if (result.state === 'ready' && second === '--layout') {
    result.layout = {};
    for (const width of third.split(',').map(Number)) {
      await page.setViewport({width, height: 800});
      result.layout[width] = await page.evaluate(async () => {
        const explorer = await window.explorer;
        explorer.picked = [5, 10];
        await explorer.showPicks();
        const box = (element) => {
          const r = element.getBoundingClientRect();
          return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
        };
        const sections = [...document.querySelectorAll('section')].map((section) => ({
          title: section.querySelector('h2').textContent,
          box: box(section),
          parts: Object.fromEntries(
            [...section.querySelectorAll('canvas, figure, #sliders, button, select, input')].map((e, i) => [
              e.id || `${e.tagName.toLowerCase()}-${i}`,
              box(e),
            ]),
          ),
        }));
        const grid = document.getElementById('grid');
        const inner = box(grid);
        const tile = (index) => {
          const w = (inner.right - inner.left - 2) / 4;
          const h = (inner.bottom - inner.top - 2) / 4;
          const left = inner.left + 1 + (index % 4) * w;
          const top = inner.top + 1 + Math.floor(index / 4) * h;
          return {left, top, right: left + w, bottom: top + h};
        };
        const marks = Object.fromEntries(
          ['mark-a', 'mark-b'].map((id) => {
            const mark = document.getElementById(id);
            if (!mark) return [id, {visible: false}];
            return [id, {box: box(mark), visible: mark.getClientRects().length > 0, text: mark.textContent}];
          }),
        );
        return {
          page_width: document.documentElement.clientWidth,
          scroll_width: document.documentElement.scrollWidth,
          sections,
          marks,
          picked_tiles: explorer.picked.map(tile),
        };
      });
      if (second && process.argv[5]) await page.screenshot({path: `${process.argv[5]}-${width}.png`, fullPage: true});
    }
    // A real click on the middle of grid tile 7 picks it as A (its frame moves there).
    const center = await page.evaluate(() => {
      const r = document.getElementById('grid').getBoundingClientRect();
      return {x: r.left + 1 + (3.5 * (r.width - 2)) / 4, y: r.top + 1 + (1.5 * (r.height - 2)) / 4};
    });
    await page.mouse.click(center.x, center.y);
    result.clicked = await page.evaluate(async () => {
      const explorer = await window.explorer;
      await explorer.queue;
      return {picked: explorer.picked, mark_a: Number(document.getElementById('mark-a').dataset.tile)};
    });
  } else if (result.state === 'ready' && second === '--bench') {
    result.bench = await page.evaluate(async () => {
      const explorer = await window.explorer;
      const timings = {};
      for (const {batch, model} of explorer.generator.models) {
        const codes = Array.from({length: batch}, () => new Float32Array(explorer.generator.latentDim));
        // performance.now() ticks in 0.1 ms steps here (no cross-origin
        // isolation): each of the 20 samples is the mean of 10 calls.
        const samples = [];
        for (let i = 0; i < 25; i++) {
          const start = performance.now();
          for (let j = 0; j < 10; j++) await explorer.generator.decode(codes);
          samples.push((performance.now() - start) / 10);
        }
        const sorted = samples.slice(5).sort((a, b) => a - b); // 5 warm-up samples
        const middle = sorted.length / 2;
        timings[batch] = {
          median_ms: (sorted[middle - 1] + sorted[middle]) / 2,
          samples: sorted.length,
          calls_per_sample: 10,
        };
      }
      return timings;
    });
  } else if (result.state === 'ready') {
    // The grid the page drew first: its codes, and the eps a two-stage prior made them of.
    result.first_grid = await page.evaluate(async () => {
      const explorer = await window.explorer;
      return {
        codes: explorer.codes.map((z) => Array.from(z)),
        eps: explorer.eps ? explorer.eps.map((e) => Array.from(e)) : null,
        about: document.getElementById('about').textContent,
      };
    });
    // A conditional generator's picker: the last class chosen (or the last attribute
    // ticked), then what the grid and the "same z, every class" rows decoded.
    result.conditioning = await page.evaluate(async () => {
      const explorer = await window.explorer;
      if (!explorer.conditioning) return null;
      const last = explorer.conditioning.names.length - 1;
      const select = document.getElementById('label');
      const control = select || document.getElementById(`label-${last}`);
      if (select) select.value = String(last);
      else control.checked = true;
      control.dispatchEvent(new Event('change'));
      await new Promise((resolve) => setTimeout(resolve, 0));
      await explorer.queue;
      await explorer.showPicks(); // the every-label rows of the picks
      await explorer.queue;
      return {
        names: explorer.conditioning.names,
        visible: document.getElementById('labels').getClientRects().length > 0,
        every_label_visible: document.getElementById('every-label').getClientRects().length > 0,
        label: Array.from(explorer.label),
        codes: explorer.codes.map((z) => Array.from(z)),
        grid: explorer.lastGrid.images.map((image) => Array.from(image)),
        picked: explorer.picked,
        every_label: explorer.everyLabel.images.map((image) => Array.from(image)),
      };
    });
    const codes = second ? JSON.parse(readFileSync(second, 'utf8')) : null;
    const canvasDigest = (id) =>
      page.evaluate((id) => {
        const canvas = document.getElementById(id);
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let hash = 0;
        for (let i = 0; i < data.length; i++) hash = (Math.imul(hash, 31) + data[i]) | 0;
        return hash;
      }, id);
    if (codes) {
      result.grid = await page.evaluate(async (codes) => {
        const explorer = await window.explorer;
        const decoded = await explorer.showGrid(codes.map((z) => Float32Array.from(z)));
        // The grid canvas, read back at one image pixel per tile pixel.
        const canvas = document.getElementById('grid');
        const [height, width, channels] = explorer.shape;
        const context = canvas.getContext('2d');
        const drawn = decoded.pixels.map((_, i) => {
          const x = (i % 4) * canvas.width / 4;
          const y = Math.floor(i / 4) * canvas.height / 4;
          const data = context.getImageData(x, y, canvas.width / 4, canvas.height / 4).data;
          const scale = canvas.width / 4 / width;
          const values = [];
          for (let r = 0; r < height; r++) {
            for (let c = 0; c < width; c++) {
              // Grey tiles: R (= G = B); colour tiles: R, G, B, as the generator's pixels.
              for (let ch = 0; ch < channels; ch++) values.push(data[4 * ((r * scale) * width * scale + c * scale) + ch]);
            }
          }
          return values;
        });
        return {
          images: decoded.images.map((image) => Array.from(image)),
          pixels: decoded.pixels.map((pixels) => Array.from(pixels)),
          drawn,
        };
      }, codes);
    }
    const before = {morph: await canvasDigest('morph'), explore: await canvasDigest('explore')};
    const slide = (selector, value) =>
      page.evaluate(async (selector, value) => {
        const slider = document.querySelector(selector);
        slider.value = value;
        slider.dispatchEvent(new Event('input'));
        await (await window.explorer).queue; // the page's updates, in order
      }, selector, value);
    await slide('#t', 0.9);
    const afterMorph = {morph: await canvasDigest('morph'), explore: await canvasDigest('explore')};
    // The code the morph decoded (slerp from grid code 0 to 1 at t = 0.9) and its pixels.
    result.morph = await page.evaluate(async () => {
      const explorer = await window.explorer;
      return {z: Array.from(explorer.base), pixels: Array.from(explorer.morphPixels)};
    });
    await slide('#direction-0', 2.5);
    const afterDirection = {morph: await canvasDigest('morph'), explore: await canvasDigest('explore')};
    result.sliders = {before, after_morph: afterMorph, after_direction: afterDirection};
    // The first named attribute slider (when the run has attribute directions): its
    // label, the code it makes from the moved morph, and the pixels shown.
    const explored = () =>
      page.evaluate(async () => {
        const explorer = await window.explorer;
        const label = document.querySelector('#attribute-0')?.parentElement.textContent.trim();
        return {z: Array.from(explorer.explored), label, names: explorer.attributes.names};
      });
    if (await page.$('#attribute-0')) {
      const beforeAttribute = await explored();
      await slide('#attribute-0', 1.5);
      result.attribute = {before: beforeAttribute, after: await explored(), explore: await canvasDigest('explore')};
    }
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
