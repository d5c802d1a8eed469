// The page's stylesheet and script, served from the fake itself (no CDN, no framework).

export const CSS = `
:root { color-scheme: light; --fg: #1d2330; --muted: #6b7383; --line: #e3e6ec; --ok: #137333; --temp: #a15c00; --perm: #b3261e; --accent: #2b59c3; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #f6f7f9; }
header { display: flex; align-items: baseline; gap: 1em; padding: 12px 20px; background: #fff; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
main { padding: 16px 20px; display: grid; gap: 16px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
tr.refused td { background: #fff8f7; }
tr.empty td { color: var(--muted); text-align: center; padding: 24px; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; background: #f6f7f9; padding: 10px; border-radius: 4px; overflow: auto; max-height: 480px; white-space: pre-wrap; word-break: break-word; }
a { color: var(--accent); }
.muted { color: var(--muted); font-weight: normal; }
.addr { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
.err { color: var(--perm); }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.pill.ok { background: #e6f4ea; color: var(--ok); } .pill.temp { background: #fef3e0; color: var(--temp); } .pill.perm { background: #fce8e6; color: var(--perm); }
.reply.ok { color: var(--ok); } .reply.temp { color: var(--temp); } .reply.perm { color: var(--perm); }
.tag { display: inline-block; background: #eef2fb; color: var(--accent); border-radius: 3px; padding: 0 6px; font-size: 12px; }
.live { font-size: 12px; color: var(--muted); margin-left: auto; }
.live.on::before { content: "● "; color: var(--ok); }
button { font: inherit; padding: 4px 12px; border: 1px solid #c6cbd5; background: #fff; border-radius: 4px; cursor: pointer; }
button:hover { background: #f0f2f6; }
button.link { border: 0; padding: 0; color: var(--accent); background: none; }
form#arm { display: flex; gap: 10px; align-items: end; flex-wrap: wrap; margin-bottom: 10px; }
form#arm label { display: grid; gap: 2px; font-size: 12px; color: var(--muted); }
form#arm input { width: 110px; font: inherit; padding: 3px 6px; }
form#arm select { font: inherit; padding: 3px 6px; }
td.hits { font-weight: 600; }
dl.grid { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.grid dt { color: var(--muted); }
dl.grid dd { margin: 0; }
iframe.html { width: 100%; height: 360px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
table.mapping tr.dropped td { color: var(--muted); }
table.mapping tr.dropped td:first-child code { text-decoration: line-through; }
td.raw { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; word-break: break-all; }
a.back { text-decoration: none; }
a.small { font-size: 12px; font-weight: normal; margin-left: 8px; }
ul.outcomes { margin: 8px 0 0; padding-left: 18px; }
`;

export const JS = `
'use strict';
(function () {
  const rows = document.getElementById('rows');
  const faults = document.getElementById('faults');
  const live = document.getElementById('live');
  const error = document.getElementById('arm-error');
  const send = (method, url, body) =>
    fetch(url, { method, headers: { 'content-type': 'application/json', 'x-inbox': '1' }, body: body === undefined ? undefined : JSON.stringify(body) });
  async function refresh() {
    if (rows) rows.innerHTML = await (await fetch('/_inbox/rows')).text();
    if (faults) faults.innerHTML = await (await fetch('/_inbox/faults')).text();
  }
  if (rows && live) {
    const events = new EventSource('/_inbox/events');
    events.addEventListener('open', () => { live.textContent = 'live'; live.classList.add('on'); });
    events.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.classList.remove('on'); });
    events.addEventListener('change', () => { refresh().catch(() => {}); });
  }
  const clear = document.getElementById('clear');
  if (clear) clear.addEventListener('click', () => { send('POST', '/_inbox/clear').then(refresh); });
  const disarm = document.getElementById('disarm');
  if (disarm) disarm.addEventListener('click', () => { send('DELETE', '/_fake/faults').then(refresh); });
  if (faults) faults.addEventListener('click', (e) => {
    const route = e.target instanceof HTMLElement ? e.target.dataset.clearRoute : undefined;
    if (route) send('DELETE', '/_fake/faults?route=' + encodeURIComponent(route)).then(refresh);
  });
  const arm = document.getElementById('arm');
  if (arm) arm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(arm);
    const fault = { route: f.get('route') };
    const effect = f.get('effect');
    if (effect === 'status') fault.status = Number(f.get('status'));
    if (effect === 'reset') fault.reset = true;
    if (effect === 'hang') fault.hang = true;
    if (f.get('delayMs')) fault.delayMs = Number(f.get('delayMs'));
    if (f.get('times')) fault.times = Number(f.get('times'));
    const res = await send('POST', '/_fake/faults', fault);
    if (error) error.textContent = res.ok ? '' : ((await res.json()).detail || []).map((d) => d.msg).join('; ');
    await refresh();
  });
})();
`;
