// The spec's request schemas for the calls the gateway makes, as check tables.

import { ATTACHMENT_TYPES, EMAIL_TYPES, ENCODINGS, GRANT_TYPES, LANGUAGES } from './enums.js';
import { array, bool, dict, int, object, oneOrMany, required, str } from './validate.js';

/** Body_createToken (form fields, so numbers arrive as strings). */
export const tokenForm = object({
  grant_type: str({ oneOf: GRANT_TYPES }),
  username: str({ email: true }),
  password: str(),
  account_id: int({ fromString: true }),
  scopes: str({ pattern: /^(user|admin|internal|auth)(?:,(user|admin|internal|auth))*$/ }),
  expiration_seconds: int({ min: 600, fromString: true }),
  refresh_token: str(),
});

/** The query parameters of the calls: account_id, page, per_page, with_count, filter, sort. */
export const pagedQuery = object({
  account_id: int({ min: 1, fromString: true }),
  page: int({ min: 1, fromString: true }),
  per_page: int({ min: 1, fromString: true }),
  with_count: bool({ fromString: true }),
  filter: str(),
  sort: str(),
});

export const accountQuery = object({
  account_id: int({ min: 1, fromString: true }),
});

/** List (POST /lists). `redirections` and `webhook` are accepted but not checked. */
export const createListBody = object({
  name: required(str({ min: 1 })),
  default_sender: required(object({ id: required(str({ min: 1 })) })),
  language: str({ oneOf: LANGUAGES }),
  redirections: dict(),
  webhook: dict(),
});

const TAG = /^[a-zA-Z0-9-_]+$/;
const FILENAME = /^[a-zA-Z0-9-_]+\.(csv|doc|docx|ics|jpeg|pdf|png|xls|xlsx)$/;

const attachment = object({
  filename: required(str({ pattern: FILENAME })),
  type: required(str({ oneOf: ATTACHMENT_TYPES })),
  content: required(str({ base64: true })),
});

/** SubmitEmail (POST /v2/emails). */
export const submitEmailBody = object({
  sender: required(object({ id: required(str({ min: 1 })), name: str({ min: 1 }) })),
  content: required(
    object({
      type: required(str({ oneOf: EMAIL_TYPES })),
      subject: required(str({ min: 1 })),
      html: str({ min: 1 }),
      text: str({ min: 1 }),
      template: object({ id: required(int()) }),
      encoding: str({ oneOf: ENCODINGS }),
      custom_attributes: array(object({ name: required(str({ min: 1 })), value: required(str()) })),
      markup: dict(),
    }),
  ),
  email: str({ email: true }),
  list_id: int({ min: 1 }),
  contact_id: int({ min: 1 }),
  tags: array(str({ min: 1, max: 255, pattern: TAG })),
  tracking: object({ opens: bool(), clicks_html: bool(), clicks_text: bool() }),
  additional_headers: array(object({ name: required(str()), value: required(str()) })),
  attachment: oneOrMany(attachment),
});
