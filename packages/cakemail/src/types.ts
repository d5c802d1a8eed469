/** The `POST /v2/emails` body (SubmitEmail in the OpenAPI spec), as far as the gateway fills it. */

export type EmailType = 'transactional' | 'marketing';

export type AttachmentType = 'csv' | 'doc' | 'docx' | 'calendar' | 'jpeg' | 'pdf' | 'png' | 'xls' | 'xlsx';

export interface EmailAttachment {
  /** `^[a-zA-Z0-9-_]+\.(csv|doc|docx|ics|jpeg|pdf|png|xls|xlsx)$` */
  readonly filename: string;
  readonly type: AttachmentType;
  /** Base64. */
  readonly content: string;
}

export interface EmailHeader {
  readonly name: string;
  readonly value: string;
}

export interface EmailTracking {
  readonly opens?: boolean;
  readonly clicks_html?: boolean;
  readonly clicks_text?: boolean;
}

export interface EmailContent {
  readonly type: EmailType;
  readonly subject: string;
  readonly html?: string;
  readonly text?: string;
  readonly encoding: 'utf-8';
}

export interface EmailBody {
  readonly sender: { readonly id: string; readonly name?: string };
  readonly email: string;
  readonly list_id: number;
  readonly content: EmailContent;
  readonly tags?: readonly string[];
  readonly tracking?: EmailTracking;
  readonly additional_headers?: readonly EmailHeader[];
  readonly attachment?: readonly EmailAttachment[];
}

/** The logger as injected: @cakemail-smtp/tls's, which any pino instance fits. */
export type { Logger } from '@cakemail-smtp/smtp-core';
