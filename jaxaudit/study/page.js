// The study page's script: asks for the annotator id, shows that annotator's
// tasks one at a time in their order and overlay conditions, keeps the answers
// in localStorage and downloads them as a judgements file.
//
// Everything from the run (title, ids, class names) reaches the page as text
// nodes and attributes, never as markup. Orders and overlay conditions come
// precomputed from jaxaudit.study.page for the declared annotators; for an
// id typed in, the order sorts tasks by SHA-256 of "seed\nannotator\ntask id"
// and the overlay slot is the low bit of SHA-256(annotator), as
// jaxaudit.study.design computes it. SHA-256 is implemented here: the page is
// synchronous and crypto.subtle needs a secure context.
'use strict';
(function () {
  const FORMAT = 'jaxaudit-judgements/1';
  const MAX_ID_CHARS = 64;
  const PRINTABLE = /^(?:[^\p{C}\p{Z}]| )+$/u;
  const data = JSON.parse(document.getElementById('study-data').textContent);
  const tasks = data.tasks;
  const taskById = new Map(tasks.map((t) => [t.id, t]));
  const declared = new Map(data.annotators.map((a) => [a.id, a]));
  const app = document.getElementById('app');
  let session = null;

  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

  function rotr(x, n) {
    return (x >>> n) | (x << (32 - n));
  }

  // SHA-256 of a string's UTF-8 bytes, as 32 bytes.
  function sha256(text) {
    const bytes = new TextEncoder().encode(text);
    const total = Math.ceil((bytes.length + 9) / 64) * 64;
    const padded = new Uint8Array(total);
    padded.set(bytes);
    padded[bytes.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(total - 8, Math.floor(bytes.length / 0x20000000));
    view.setUint32(total - 4, (bytes.length * 8) >>> 0);
    const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    const w = new Uint32Array(64);
    for (let block = 0; block < total; block += 64) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + 4 * i);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
      }
      let [a, b, c, d, e, f, g, k] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) +
                    ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) +
                    ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
        k = g; g = f; f = e; e = (d + t1) >>> 0;
        d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      [a, b, c, d, e, f, g, k].forEach((v, i) => { h[i] += v; });
    }
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    h.forEach((v, i) => outView.setUint32(4 * i, v));
    return out;
  }

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // The tasks' indices in the order `annotator` sees them.
  function orderFor(annotator) {
    const known = declared.get(annotator);
    if (known) return known.order.slice();
    const keys = tasks.map((t, i) =>
      [hex(sha256(`${data.seed}\n${annotator}\n${t.id}`)), i]);
    keys.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] - y[1]));
    return keys.map((key) => key[1]);
  }

  function slotFor(annotator) {
    const known = declared.get(annotator);
    return known ? known.slot : sha256(annotator)[31] & 1;
  }

  function node(tag, props, ...children) {
    const e = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name.startsWith('data-') || name.startsWith('aria-') ||
          name === 'role') {
        e.setAttribute(name, value);
      } else {
        e[name] = value;
      }
    }
    e.append(...children);
    return e;
  }

  function button(label, onClick, props) {
    const b = node('button', Object.assign({type: 'button'}, props), ...label);
    b.addEventListener('click', (ev) => {
      ev.currentTarget.blur();
      onClick();
    });
    return b;
  }

  function storageKey(annotator) {
    return `jaxaudit:${data.run_id}:${annotator}`;
  }

  // A stored answer, if it still fits the task; the overlay from the design.
  function checked(saved, task, withOverlay) {
    if (!saved || saved.kind !== task.kind) return null;
    const indices = new Set(task.options.map((o) => o[0]));
    if (task.kind === 'error') {
      const correct = saved.correct;
      if (!Array.isArray(correct) || !correct.every((c) => indices.has(c)) ||
          new Set(correct).size !== correct.length) return null;
      return {task: task.id, kind: 'error',
              correct: correct.slice().sort((x, y) => x - y)};
    }
    if (task.kind === 'adversarial') {
      if (typeof saved.acceptable !== 'boolean') return null;
      return {task: task.id, kind: 'adversarial', acceptable: saved.acceptable,
              overlay: withOverlay};
    }
    if (saved.seen !== null && !indices.has(saved.seen)) return null;
    return {task: task.id, kind: 'subset', seen: saved.seen};
  }

  function restore(annotator, slot) {
    const answers = new Map();
    let stored = [];
    try {
      const raw = window.localStorage.getItem(storageKey(annotator));
      const value = raw ? JSON.parse(raw) : null;
      if (value && Array.isArray(value.answers)) stored = value.answers;
    } catch (e) {
      stored = [];
    }
    for (const saved of stored) {
      const task = saved && taskById.get(saved.task);
      const answer = task && checked(saved, task, task.overlay[slot]);
      if (answer) answers.set(task.id, answer);
    }
    return answers;
  }

  function save() {
    const stored = {format: FORMAT, answers: fileAnswers()};
    try {
      window.localStorage.setItem(storageKey(session.annotator),
                                  JSON.stringify(stored));
      session.saved = true;
    } catch (e) {
      session.saved = false;
    }
  }

  function fileAnswers() {
    return session.order.map((i) => session.answers.get(tasks[i].id))
      .filter((a) => a !== undefined);
  }

  function download() {
    const file = {format: FORMAT, run_id: data.run_id,
                  annotator: session.annotator, answers: fileAnswers()};
    const blob = new Blob([JSON.stringify(file, null, 1) + '\n'],
                          {type: 'application/json'});
    const safe = (s) => s.replace(/[^\p{L}\p{N}._-]+/gu, '_');
    const name = `${safe(data.run_id)}-${safe(session.annotator)}`;
    const link = node('a', {href: URL.createObjectURL(blob),
                            download: `judgements-${name}.json`});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  function start(raw) {
    const annotator = raw.trim();
    const chars = Array.from(annotator).length;
    if (chars < 1 || chars > MAX_ID_CHARS || !PRINTABLE.test(annotator)) {
      return `An annotator id is 1 to ${MAX_ID_CHARS} printable characters.`;
    }
    const slot = slotFor(annotator);
    const order = orderFor(annotator);
    const answers = restore(annotator, slot);
    let pos = order.findIndex((i) => !answers.has(tasks[i].id));
    if (pos < 0) pos = order.length;
    session = {annotator, slot, order, answers, pos, saved: true, hint: ''};
    render();
    return '';
  }

  function current() {
    return session.pos < session.order.length ?
      tasks[session.order[session.pos]] : null;
  }

  function record(answer) {
    session.answers.set(answer.task, answer);
    session.hint = '';
    save();
    render();
  }

  function toggle(task, index) {
    const old = session.answers.get(task.id);
    const correct = new Set(old ? old.correct : []);
    if (correct.has(index)) correct.delete(index); else correct.add(index);
    record({task: task.id, kind: 'error',
            correct: Array.from(correct).sort((x, y) => x - y)});
  }

  function choose(task, value) {
    if (task.kind === 'error') {
      if (value === null) record({task: task.id, kind: 'error', correct: []});
      else toggle(task, value);
    } else if (task.kind === 'subset') {
      record({task: task.id, kind: 'subset', seen: value});
    } else {
      record({task: task.id, kind: 'adversarial', acceptable: value,
              overlay: task.overlay[session.slot]});
    }
  }

  function next() {
    const task = current();
    if (!task) return;
    if (!session.answers.has(task.id)) {
      if (task.kind !== 'error') {
        session.hint = 'Answer this task first.';
        render();
        return;
      }
      session.answers.set(task.id, {task: task.id, kind: 'error', correct: []});
      save();
    }
    session.pos += 1;
    session.hint = '';
    render();
  }

  function back() {
    if (session.pos === 0) return;
    session.pos -= 1;
    session.hint = '';
    render();
  }

  function digit(d) {
    const task = current();
    if (!task || task.kind === 'adversarial') return;
    if (d === 0) choose(task, null);
    else if (d <= task.options.length) choose(task, task.options[d - 1][0]);
  }

  function yesNo(value) {
    const task = current();
    if (task && task.kind === 'adversarial') choose(task, value);
  }

  function figure(src, id, caption) {
    return node('figure', {},
                node('img', {src, id, className: 'shown', alt: caption}),
                node('figcaption', {}, caption));
  }

  function optionButton(label, key, pressed, onClick, index) {
    const props = {className: 'option', 'aria-pressed': String(pressed)};
    if (index !== undefined) props['data-index'] = String(index);
    return button([node('span', {className: 'key'}, key),
                   node('span', {className: 'name'}, label)], onClick, props);
  }

  function taskView(task) {
    const answer = session.answers.get(task.id);
    const withOverlay = task.kind === 'adversarial' &&
      task.overlay[session.slot];
    const images = node('div', {className: 'images'},
                        figure(task.image, 'image', 'Image'));
    if (withOverlay) {
      images.append(figure(task.heatmap, 'overlay',
                           'Explanation: where the model looked'));
    }
    const options = node('div', {className: 'options'});
    let prompt;
    if (task.kind === 'error') {
      prompt = ['Which of these labels are correct for this image? Select ' +
                'every correct one (none is an answer too: press 0).'];
      const correct = new Set(answer ? answer.correct : []);
      task.options.forEach(([index, name], i) => options.append(optionButton(
        name, i < 9 ? String(i + 1) : '', correct.has(index),
        () => choose(task, index), index)));
    } else if (task.kind === 'adversarial') {
      prompt = ['Is the label ', node('q', {id: 'label'}, task.label),
                ' acceptable for this image?'];
      const acceptable = answer ? answer.acceptable : null;
      options.append(
        optionButton('Yes', 'y', acceptable === true, () => choose(task, true)),
        optionButton('No', 'n', acceptable === false,
                     () => choose(task, false)));
    } else {
      prompt = ['Which class do you see in this image, if any?'];
      const seen = answer ? answer.seen : undefined;
      task.options.forEach(([index, name], i) => options.append(optionButton(
        name, i < 9 ? String(i + 1) : '', seen === index,
        () => choose(task, index), index)));
      options.append(optionButton('None', '0', seen === null,
                                  () => choose(task, null)));
    }
    return node(
      'main', {id: 'task', 'data-task': task.id, 'data-kind': task.kind,
               'data-overlay': String(withOverlay)},
      node('p', {className: 'prompt'}, ...prompt), images, options,
      node('nav', {},
           button(['Back (Backspace)'], back, {id: 'back'}),
           button(['Next (Enter)'], next, {id: 'next'})),
      node('p', {className: 'hint', id: 'hint', role: 'alert'}, session.hint),
      node('p', {className: 'help'}, 'Keys: 1-9 select a label, 0 none, ' +
           'y / n yes or no, Enter next, Backspace back.'));
  }

  function doneView() {
    return node(
      'main', {id: 'done'},
      node('p', {className: 'prompt'}, `All ${tasks.length} tasks answered. ` +
           'Download the judgements and send the file to the study\'s ' +
           'organiser.'),
      button(['Download judgements'], download, {id: 'download-final'}),
      node('nav', {}, button(['Back (Backspace)'], back, {id: 'back'})));
  }

  function render() {
    const task = current();
    const header = node(
      'header', {},
      node('span', {id: 'who'}, 'Annotator: ',
           node('strong', {}, session.annotator)),
      node('span', {id: 'progress'},
           `${Math.min(session.pos + 1, session.order.length)} / ` +
           `${session.order.length}`),
      node('span', {id: 'answered'}, `${session.answers.size} answered`),
      button(['Download judgements'], download, {id: 'download'}),
      button(['Change annotator'], () => { session = null; renderStart(); },
             {id: 'switch'}));
    const warning = session.saved ? '' : 'This browser does not keep the ' +
      'answers: download them before closing the page.';
    app.replaceChildren(
      node('h1', {id: 'title'}, data.title), header,
      node('p', {className: 'hint', id: 'storage', hidden: !warning},
           warning),
      task ? taskView(task) : doneView());
    document.body.setAttribute('data-slot', String(session.slot));
  }

  function renderStart() {
    document.body.removeAttribute('data-slot');
    const input = node('input', {type: 'text', id: 'annotator',
                                 autocomplete: 'off', spellcheck: false});
    const error = node('p', {className: 'hint', id: 'start-error',
                             role: 'alert'});
    const go = () => { error.textContent = start(input.value); };
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        go();
      }
    });
    const choices = node('div', {className: 'annotator-choices'});
    for (const a of data.annotators) {
      choices.append(button([a.id], () => { input.value = a.id; go(); },
                            {className: 'annotator-choice'}));
    }
    app.replaceChildren(
      node('h1', {id: 'title'}, data.title),
      node('p', {}, 'Who is answering? Pick your annotator id or type it ' +
           '(the same id later resumes where you stopped).'),
      choices, node('p', {}, input, ' ', button(['Start'], go, {id: 'start'})),
      error);
    input.focus();
  }

  document.addEventListener('keydown', (ev) => {
    if (!session || ev.ctrlKey || ev.metaKey || ev.altKey ||
        ev.target instanceof HTMLInputElement) return;
    const key = ev.key;
    if (key === 'Enter') next();
    else if (key === 'Backspace') back();
    else if (/^[0-9]$/.test(key)) digit(Number(key));
    else if (key === 'y' || key === 'Y') yesNo(true);
    else if (key === 'n' || key === 'N') yesNo(false);
    else return;
    ev.preventDefault();
  });

  document.title = data.title;
  renderStart();
})();
