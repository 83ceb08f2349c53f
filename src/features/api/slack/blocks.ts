/** The ids of the API token surfaces: the Home tab's button, the list modal and its Revoke buttons. */
export const API_TOKEN_ACTIONS = {
  open: 'api_tokens_open',
  revoke: 'api_token_revoke',
} as const;

export const API_TOKENS_VIEW = 'api_tokens_modal';
export const API_TOKEN_NAME_BLOCK = 'name';
export const API_TOKEN_EXPIRES_BLOCK = 'expires';
