/**
 * The Cakemail side, through the gateway's own API client: the login (a wrong password, MFA and
 * an unreachable API told apart), its accounts, their senders, the list messages will use.
 */
import { CakemailClient, CakemailError, GATEWAY_LIST_NAME, isMfaChallenge, type CallOptions, type SenderInfo, type TokenResult } from '@cakemail-smtp/cakemail';
import { failed, passed, skipped, type Check } from './report.js';

export interface CakemailCheckOptions {
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly username: string;
  readonly password: string;
  /** CAKEMAIL_LIST_ID. */
  readonly listId: number | undefined;
  /** --from: checked against the confirmed senders too. */
  readonly from: string | undefined;
}

/** How to confirm a sender, in Cakemail's words. */
const HOW_TO_CONFIRM =
  'confirm it by clicking the link in the confirmation email Cakemail sent to that address (resend it from the Senders page of the Cakemail app)';

export async function checkCakemail(options: CakemailCheckOptions): Promise<Check[]> {
  const client = new CakemailClient({ apiUrl: options.apiUrl, timeoutMs: options.timeoutMs, connections: 2, retry: { maxAttempts: 2 } });
  const opts = (): CallOptions => ({ deadline: Date.now() + options.timeoutMs * 2 });
  const checks: Check[] = [];
  try {
    let token: TokenResult;
    try {
      token = await client.token(options.username, options.password, undefined, opts());
      checks.push(passed('login', `login: ${options.username} logged in to ${options.apiUrl}`));
    } catch (err) {
      checks.push(loginFailure(err, options));
      for (const id of ['accounts', 'senders', 'list']) checks.push(skipped(id, `${id}: not checked (needs a login)`));
      return checks;
    }

    if (token.accounts.length === 0) {
      checks.push(failed('accounts', 'accounts: the login can use no account', 'ask the account owner to give this user access to an account'));
      return checks;
    }
    checks.push(
      passed('accounts', `accounts: ${token.accounts.join(', ')} (messages use ${token.accounts[0]} unless MAIL FROM is a sender of another, or x-account-id picks one)`),
    );

    const confirmedByAccount = new Map<number, SenderInfo[]>();
    const unconfirmedEmails = new Set<string>();
    for (const accountId of token.accounts) {
      let senders: SenderInfo[];
      try {
        senders = await client.listSenders(token.accessToken, accountId, opts());
      } catch (err) {
        checks.push(failed(`senders:${accountId}`, `senders of account ${accountId}: ${apiProblem(err)}`, fixFor(err)));
        continue;
      }
      const confirmed = senders.filter((s) => s.confirmed);
      const unconfirmed = senders.filter((s) => !s.confirmed);
      confirmedByAccount.set(accountId, confirmed);
      for (const s of unconfirmed) unconfirmedEmails.add(s.email.toLowerCase());
      const notes = unconfirmed.map((s) => `unconfirmed: ${s.email} (refused at MAIL FROM until confirmed): ${HOW_TO_CONFIRM}`);
      if (confirmed.length === 0) {
        checks.push(
          failed(
            `senders:${accountId}`,
            `senders of account ${accountId}: no confirmed sender, so every MAIL FROM is refused (553 5.7.1)`,
            unconfirmed.length ? `confirm one of the senders below: ${HOW_TO_CONFIRM}` : 'add a sender in the Cakemail app (Senders) and confirm it',
            notes,
          ),
        );
      } else {
        checks.push(passed(`senders:${accountId}`, `senders of account ${accountId}: ${confirmed.map((s) => s.email).join(', ')} confirmed`, notes));
      }
    }

    if (options.from !== undefined) {
      const from = options.from.toLowerCase();
      const account = [...confirmedByAccount].find(([, list]) => list.some((s) => s.email.toLowerCase() === from))?.[0];
      checks.push(
        account !== undefined
          ? passed('sender', `sender ${options.from}: a confirmed sender of account ${account}`)
          : unconfirmedEmails.has(from)
            ? failed('sender', `sender ${options.from}: not confirmed yet, so MAIL FROM is refused (553 5.7.1)`, HOW_TO_CONFIRM)
            : failed(
                'sender',
                `sender ${options.from}: not a sender of any account of this login, so MAIL FROM is refused (553 5.7.1)`,
                `add ${options.from} as a sender in the Cakemail app (Senders) and confirm it, or send from one of the confirmed senders above`,
              ),
      );
    }

    checks.push(...(await checkList(client, token, confirmedByAccount, options, opts)));
    return checks;
  } finally {
    await client.close();
  }
}

async function checkList(
  client: CakemailClient,
  token: TokenResult,
  confirmed: ReadonlyMap<number, SenderInfo[]>,
  options: CakemailCheckOptions,
  opts: () => CallOptions,
): Promise<Check[]> {
  const checks: Check[] = [];
  if (options.listId !== undefined) {
    const listId = options.listId;
    try {
      for (const accountId of token.accounts) {
        const found = (await client.listLists(token.accessToken, accountId, opts())).find((l) => l.id === listId);
        if (found) return [passed('list', `list: CAKEMAIL_LIST_ID=${listId} is "${found.name}" in account ${accountId}`)];
      }
    } catch (err) {
      return [failed('list', `list: ${apiProblem(err)}`, fixFor(err))];
    }
    return [
      failed(
        'list',
        `list: CAKEMAIL_LIST_ID=${listId} is not a list of this login's accounts (${token.accounts.join(', ')}), so sends are refused`,
        `set CAKEMAIL_LIST_ID to one of the account's list ids, or unset it to use a list named "${GATEWAY_LIST_NAME}"`,
      ),
    ];
  }
  for (const accountId of token.accounts) {
    try {
      const found = await client.findListByName(token.accessToken, accountId, GATEWAY_LIST_NAME, opts());
      const sender = confirmed.get(accountId)?.[0];
      if (found) checks.push(passed(`list:${accountId}`, `list of account ${accountId}: "${GATEWAY_LIST_NAME}" found (id ${found.id})`));
      else if (sender) {
        checks.push(
          passed(`list:${accountId}`, `list of account ${accountId}: no "${GATEWAY_LIST_NAME}" list yet; the gateway creates it with the first message (default sender ${sender.email})`),
        );
      } else {
        checks.push(
          failed(
            `list:${accountId}`,
            `list of account ${accountId}: no "${GATEWAY_LIST_NAME}" list, and it cannot be created without a confirmed sender`,
            'confirm a sender of this account (see above), or set CAKEMAIL_LIST_ID',
          ),
        );
      }
    } catch (err) {
      checks.push(failed(`list:${accountId}`, `list of account ${accountId}: ${apiProblem(err)}`, fixFor(err)));
    }
  }
  return checks;
}

function loginFailure(err: unknown, options: CakemailCheckOptions): Check {
  if (isMfaChallenge(err)) {
    return failed(
      'login',
      `login: ${options.username} uses multi-factor authentication (MFA), which SMTP AUTH cannot complete: the gateway answers 535`,
      'log in to SMTP with a Cakemail user without MFA (a dedicated user for the application)',
    );
  }
  if (err instanceof CakemailError && err.kind === 'auth') {
    return failed(
      'login',
      `login: Cakemail refused ${options.username}: wrong username or password (HTTP ${err.status ?? '?'}${err.apiMessage ? `: ${err.apiMessage}` : ''})`,
      'check the username (CAKEMAIL_USERNAME or --user) and the password; reset it in the Cakemail app if needed',
    );
  }
  if (err instanceof CakemailError && (err.reason === 'network' || err.reason === 'timeout' || err.reason === 'deadline')) {
    return failed(
      'login',
      `login: the Cakemail API at ${options.apiUrl} is unreachable (${err.message.replace(/^Cakemail /, '')})`,
      'check CAKEMAIL_API_URL, DNS and any firewall or proxy between this host and the API',
    );
  }
  return failed('login', `login: ${apiProblem(err)}`, fixFor(err));
}

function apiProblem(err: unknown): string {
  if (err instanceof CakemailError) return err.message.replace(/^Cakemail /, 'the Cakemail API: ');
  return 'unexpected error';
}

function fixFor(err: unknown): string {
  if (err instanceof CakemailError && err.kind === 'temporary') return 'Cakemail is unavailable or throttling: try again in a minute';
  if (err instanceof CakemailError && err.status === 403) return 'the login may not use this account: ask the account owner for access';
  return 'see the message above; run again with the same login to confirm';
}
