// Modal dialogs (native <dialog>: focus is trapped, Escape closes) and problem+json display.
import {h, icon} from './dom.mjs';

/** An RFC 9457 problem as a readable block: title, detail, errors[], status and type. */
export function problemView(err, {compact = false} = {}) {
  const p = (err && err.problem) || {title: (err && err.message) || String(err)};
  const errors = Array.isArray(p.errors) ? p.errors : [];
  const where = (e) => e.pointer ?? (e.parameter != null ? `?${e.parameter}` : e.header ?? '');
  return h('div', {class: ['problem', compact && 'problem-compact'], role: 'alert', 'data-problem-status': p.status ?? ''},
    h('div', {class: 'problem-title'}, icon('alert'), h('strong', null, p.title || 'Error'),
      p.status ? h('span', {class: 'problem-status'}, String(p.status)) : null),
    p.detail ? h('p', {class: 'problem-detail'}, p.detail) : null,
    errors.length
      ? h('ul', {class: 'problem-errors'},
          errors.map((e) => h('li', null, where(e) !== '' ? h('code', null, where(e)) : null, where(e) !== '' ? ' ' : null, e.message || JSON.stringify(e))))
      : null,
    p.type && p.type !== 'about:blank' ? h('div', {class: 'problem-type'}, p.type) : null);
}

/**
 * openDialog({title, description, body, actions, onClose, className})
 * actions: [{label, kind: 'primary'|'danger'|'secondary', icon, onClick: async (dlg) => {}}]
 * A failing onClick shows its error in the dialog; one that resolves closes it unless it
 * returns false.
 */
export function openDialog({title, description, body, actions = [], onClose, className, initialFocus}) {
  const errorBox = h('div', {class: 'dialog-error', 'aria-live': 'assertive'});
  const titleId = `dlg-${Math.random().toString(36).slice(2, 8)}`;
  const closeBtn = h('button', {type: 'button', class: 'btn btn-ghost btn-icon dialog-x', 'aria-label': 'Close'}, icon('x'));
  const buttons = actions.map((a) =>
    h('button', {type: a.submit ? 'submit' : 'button', class: ['btn', `btn-${a.kind || 'secondary'}`], 'data-action': a.id || null},
      a.icon ? icon(a.icon) : null, h('span', null, a.label)));
  const form = h('form', {class: 'dialog-form', method: 'dialog', novalidate: true},
    h('header', {class: 'dialog-head'}, h('h2', {id: titleId}, title), closeBtn),
    description ? h('p', {class: 'dialog-desc'}, description) : null,
    body || null,
    errorBox,
    h('footer', {class: 'dialog-actions'}, buttons));
  const dlg = h('dialog', {class: ['dialog', className], 'aria-labelledby': titleId}, form);
  document.body.append(dlg);

  let closed = false;
  const api = {
    dialog: dlg,
    close() {
      if (closed) return;
      closed = true;
      if (dlg.open) dlg.close();
      dlg.remove();
      if (onClose) onClose();
    },
    setError(err) {
      errorBox.replaceChildren(err ? problemView(err, {compact: true}) : '');
    },
    setBusy(busy) {
      for (const b of buttons) b.disabled = busy;
      dlg.classList.toggle('busy', busy);
    },
  };
  closeBtn.addEventListener('click', () => api.close());
  dlg.addEventListener('close', () => api.close());
  dlg.addEventListener('cancel', (ev) => {
    // Escape: close unless a request is in flight.
    if (dlg.classList.contains('busy')) ev.preventDefault();
  });
  dlg.addEventListener('click', (ev) => {
    if (ev.target === dlg) api.close(); // a click on the backdrop
  });
  actions.forEach((a, i) => {
    const run = async (ev) => {
      if (ev) ev.preventDefault();
      if (!a.onClick) return api.close();
      api.setError(null);
      api.setBusy(true);
      try {
        const keep = await a.onClick(api);
        api.setBusy(false);
        if (keep !== false) api.close();
      } catch (err) {
        api.setBusy(false);
        api.setError(err);
      }
    };
    buttons[i].addEventListener('click', run);
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const primary = actions.findIndex((a) => a.submit);
    if (primary >= 0) buttons[primary].click();
  });
  dlg.showModal();
  const focusTarget = initialFocus || form.querySelector('input, textarea, select') || buttons[buttons.length - 1];
  if (focusTarget) focusTarget.focus();
  return api;
}

/** A confirmation for a destructive or important action; resolves true when it ran. */
export function confirmAction({title, message, confirmLabel, dismissLabel = 'Back', danger = false, iconName, withReason = false, run}) {
  return new Promise((resolve) => {
    let done = false;
    const reason = withReason
      ? h('input', {type: 'text', class: 'input', id: 'confirm-reason', maxlength: '1024', placeholder: 'Shown in the history', autocomplete: 'off'})
      : null;
    const body = reason
      ? h('div', {class: 'field'}, h('label', {for: 'confirm-reason'}, 'Reason ', h('span', {class: 'muted'}, '(optional)')), reason)
      : null;
    const dlg = openDialog({
      title,
      description: message,
      body,
      className: 'dialog-confirm',
      onClose: () => resolve(done),
      actions: [
        {label: dismissLabel, kind: 'secondary', id: 'dismiss'},
        {
          label: confirmLabel,
          kind: danger ? 'danger' : 'primary',
          icon: iconName,
          id: 'confirm',
          submit: true,
          onClick: async () => {
            await run(reason ? reason.value.trim() : '');
            done = true;
          },
        },
      ],
    });
    if (!reason) dlg.dialog.querySelector('[data-action="confirm"]').focus();
  });
}
