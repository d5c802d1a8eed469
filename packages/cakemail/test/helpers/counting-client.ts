// An API client that counts the sends in flight at once, as the relay makes them.
import { CakemailClient } from '../../src/client.js';

export class CountingClient extends CakemailClient {
  #inFlight = 0;
  maxInFlight = 0;

  override async sendEmail(...args: Parameters<CakemailClient['sendEmail']>): ReturnType<CakemailClient['sendEmail']> {
    this.maxInFlight = Math.max(this.maxInFlight, ++this.#inFlight);
    try {
      return await super.sendEmail(...args);
    } finally {
      this.#inFlight--;
    }
  }
}
