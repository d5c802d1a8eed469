// Fault switches per route: forced status, delay, reset, hang, 201-with-status, N times, match.

import type { ActiveFault, Fault, FaultSwitches, RouteKey } from './types.js';

interface Armed {
  fault: Readonly<Fault>;
  remaining: number | undefined;
  hits: number;
}

const ROUTES: readonly RouteKey[] = ['token', 'senders', 'lists', 'createList', 'send'];

function checkFault(route: RouteKey, fault: Fault): void {
  const actions = [fault.status !== undefined, fault.reset === true, fault.hang === true, fault.sendStatus !== undefined];
  const count = actions.filter(Boolean).length;
  if (count > 1) throw new Error('fake-cakemail: a fault takes one of status, reset, hang, sendStatus');
  if (count === 0 && fault.delayMs === undefined) throw new Error('fake-cakemail: a fault needs an action or delayMs');
  if (fault.status !== undefined && !(Number.isInteger(fault.status) && fault.status >= 100 && fault.status <= 599)) {
    throw new Error(`fake-cakemail: bad fault status ${fault.status}`);
  }
  if (fault.times !== undefined && !(Number.isInteger(fault.times) && fault.times >= 1)) {
    throw new Error('fake-cakemail: fault times must be an integer >= 1');
  }
  if (route !== 'send' && (fault.sendStatus !== undefined || fault.match !== undefined)) {
    throw new Error("fake-cakemail: sendStatus and match apply to the 'send' route only");
  }
}

export class Faults implements FaultSwitches {
  private readonly armed = new Map<RouteKey, Armed[]>(ROUTES.map((r) => [r, []]));
  /** Fast path: no lookups at all while nothing is armed. */
  private total = 0;

  set(route: RouteKey, fault: Fault): void {
    checkFault(route, fault);
    this.clear(route);
    this.add(route, fault);
  }

  add(route: RouteKey, fault: Fault): void {
    checkFault(route, fault);
    const copy: Fault = { ...fault, ...(fault.match === undefined ? {} : { match: { ...fault.match } }) };
    this.armed.get(route)?.push({ fault: Object.freeze(copy), remaining: fault.times, hits: 0 });
    this.total += 1;
  }

  clear(route?: RouteKey): void {
    for (const r of route === undefined ? ROUTES : [route]) {
      const list = this.armed.get(r);
      if (list === undefined) continue;
      this.total -= list.length;
      list.length = 0;
    }
  }

  list(route?: RouteKey): ActiveFault[] {
    const out: ActiveFault[] = [];
    for (const r of route === undefined ? ROUTES : [route]) {
      for (const a of this.armed.get(r) ?? []) out.push({ route: r, fault: a.fault, remaining: a.remaining, hits: a.hits });
    }
    return out;
  }

  /** The first applicable fault for this call, consumed once; undefined when none applies. */
  take(route: RouteKey, recipient: string | undefined): Fault | undefined {
    if (this.total === 0) return undefined;
    const list = this.armed.get(route);
    if (list === undefined) return undefined;
    const index = list.findIndex((a) => matches(a.fault, recipient));
    const found = list[index];
    if (found === undefined) return undefined;
    found.hits += 1;
    if (found.remaining !== undefined) {
      found.remaining -= 1;
      if (found.remaining === 0) {
        list.splice(index, 1);
        this.total -= 1;
      }
    }
    return found.fault;
  }
}

function matches(fault: Fault, recipient: string | undefined): boolean {
  const wanted = fault.match?.email;
  if (wanted === undefined) return true;
  return recipient !== undefined && recipient.toLowerCase() === wanted.toLowerCase();
}
