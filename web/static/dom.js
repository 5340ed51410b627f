// Small DOM helpers shared by the views.

/**
 * h builds an element: h('button', {class: 'x', onclick: fn}, 'text', child).
 * Attributes starting with "on" become event listeners; `hidden`, `disabled`
 * and other booleans are set only when true; null children are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** $ returns the first element matching sel inside root (document by default). */
export function $(sel, root = document) {
  return root.querySelector(sel);
}

/** announce tells assistive technology about text through the polite live region. */
export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  // A new text node in a fresh task is announced even when the text repeats.
  setTimeout(() => { el.textContent = text; }, 30);
}

/** relativeTime renders an RFC 3339 time as "just now", "5 min ago", "3 h ago" or a date. */
export function relativeTime(iso) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

/** clockTime renders an RFC 3339 time as a local hour and minute. */
export function clockTime(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** showFormError fills (or hides, for an empty text) the form's role=alert paragraph. */
export function showFormError(form, text) {
  const p = form.querySelector('.form-error');
  if (!p) return;
  p.textContent = text || '';
  p.hidden = !text;
}

/**
 * confirmDialog asks a yes/no question in the page's modal <dialog> and
 * resolves to true when the user confirms.
 */
export function confirmDialog(text, okLabel = 'Confirm') {
  const dlg = document.getElementById('confirm-dialog');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}
