// Enumerations copied from Cakemail's OpenAPI spec (v1.18.25): Languages, Encoding,
// AttachmentType, SubmitEmailType, PasswordGrantType, SubmitEmailAPIStatus.

export const LANGUAGES = [
  'da', 'da_DK', 'de', 'de_DE', 'el', 'el_GR', 'en', 'en_US', 'en_GB', 'en_UK', 'es', 'es_US',
  'es_ES', 'et', 'et_EE', 'fi', 'fi_FI', 'fr', 'fr_CA', 'fr_FR', 'he', 'he_IL', 'id', 'id_ID',
  'it', 'it_IT', 'ja', 'ja_JP', 'nl', 'nl_NL', 'no', 'no_NO', 'pt', 'pt_BR', 'ro', 'ro_RO', 'ru',
  'ru_RU', 'sv', 'sv_SE', 'th', 'th_TH', 'tr', 'tr_TR', 'vi', 'vi_VN', 'zh', 'zh_CN', 'aa', 'ab',
  'ae', 'af', 'ak', 'am', 'an', 'ar', 'av', 'ay', 'az', 'ba', 'be', 'bg', 'bh', 'bi', 'bm', 'bn',
  'bo', 'br', 'bs', 'ca', 'ce', 'ch', 'co', 'cr', 'cs', 'cu', 'cv', 'cy', 'dv', 'dz', 'ee', 'eo',
  'eu', 'fa', 'ff', 'fj', 'fo', 'fy', 'ga', 'gd', 'gl', 'gn', 'gu', 'gv', 'ha', 'hi', 'ho', 'hr',
  'ht', 'hu', 'hy', 'hz', 'ia', 'ie', 'ig', 'ii', 'ik', 'io', 'is_IS', 'iu', 'jv', 'ka', 'kg',
  'ki', 'kj', 'kk', 'kl', 'km', 'kn', 'ko', 'kr', 'ks', 'ku', 'kv', 'kw', 'ky', 'la', 'lb', 'lg',
  'li', 'ln', 'lo', 'lt', 'lu', 'lv', 'mg', 'mh', 'mi', 'mk', 'ml', 'mn', 'mr', 'ms', 'mt', 'my',
  'na', 'nb', 'nd', 'ne', 'ng', 'nn', 'nr', 'nv', 'ny', 'oc', 'oj', 'om', 'os', 'pa', 'pi', 'pl',
  'ps', 'qu', 'rm', 'rn', 'rw', 'sa', 'sc', 'sd', 'se', 'sg', 'si', 'sk', 'sl', 'sm', 'sn', 'so',
  'sq', 'sr', 'ss', 'st', 'su', 'sw', 'ta', 'te', 'tg', 'ti', 'tk', 'tl', 'tn', 'to', 'ts', 'tt',
  'tw', 'ty', 'ug', 'uk', 'ur', 'uz', 've', 'vo', 'wa', 'wo', 'xh', 'yi', 'yo', 'za', 'zu',
] as const;

export const ENCODINGS = [
  'utf-8', 'armscii-8', 'ascii', 'big-5', 'cp51932', 'cp866', 'cp936', 'euc-cn', 'euc-jp',
  'eucjp-win', 'euc-kr', 'euc-tw', 'hz', 'iso-2022-jp', 'iso-2022-jp-ms', 'iso-2022-kr',
  'iso-8859-1', 'iso-8859-10', 'iso-8859-13', 'iso-8859-14', 'iso-8859-15', 'iso-8859-16',
  'iso-8859-2', 'iso-8859-3', 'iso-8859-4', 'iso-8859-5', 'iso-8859-6', 'iso-8859-7', 'iso-8859-8',
  'iso-8859-9', 'jis', 'koi8-r', 'sjis', 'sjis-win', 'uhc', 'windows-1251', 'windows-1252',
] as const;

export const ATTACHMENT_TYPES = ['csv', 'doc', 'docx', 'calendar', 'jpeg', 'pdf', 'png', 'xls', 'xlsx'] as const;

export const EMAIL_TYPES = ['marketing', 'transactional'] as const;

export const GRANT_TYPES = ['password', 'refresh_token'] as const;

export const SUBMIT_STATUSES = ['queued', 'rejected', 'error'] as const;
