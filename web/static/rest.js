// REST client of the Aoba API (GET /api/openapi.json): same-origin fetch
// with the HttpOnly auth_token cookie, JSON in and out.

/** ApiError is a failed request: status is the HTTP status (0 when the server could not be reached). */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || (status === 0 ? 'The server cannot be reached.' : `Request failed (${status}).`));
    this.status = status;
    this.body = body;
  }
}

let unauthorizedHandler = null;

/** onUnauthorized registers the function called when a signed-in request gets a 401. */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/** request sends one JSON request and resolves to the decoded body (null for 204), or rejects with an ApiError. */
export async function request(method, path, body, { quiet401 = false } = {}) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch {
    throw new ApiError(0, null);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && !quiet401 && unauthorizedHandler) unauthorizedHandler();
    if (res.status === 429) {
      const after = res.headers.get('Retry-After');
      throw new ApiError(429, { message: `Too many requests; try again in ${after || 'a few'} seconds.` });
    }
    throw new ApiError(res.status, data);
  }
  return data;
}

const enc = encodeURIComponent;

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** api lists every route the client uses. */
export const api = {
  register: (username, password) => request('POST', '/api/auth/register', { username, password }, { quiet401: true }),
  login: (username, password) => request('POST', '/api/auth/login', { username, password }, { quiet401: true }),
  logout: () => request('POST', '/api/auth/logout', undefined, { quiet401: true }),
  me: () => request('GET', '/api/users/me', undefined, { quiet401: true }),
  deleteMe: () => request('DELETE', '/api/users/me'),
  changeUsername: (username) => request('PUT', '/api/users/me/username', { username }),
  changePassword: (current_password, new_password) =>
    request('PUT', '/api/users/me/password', { current_password, new_password }),
  searchUsers: (q, page, limit, exclude) => request('GET', `/api/users${query({ q, page, limit, exclude })}`),
  user: (username) => request('GET', `/api/users/${enc(username)}`),
  blocks: () => request('GET', '/api/users/me/blocks'),
  block: (username) => request('PUT', `/api/users/me/blocks/${enc(username)}`),
  unblock: (username) => request('DELETE', `/api/users/me/blocks/${enc(username)}`),

  groups: () => request('GET', '/api/groups'),
  createGroup: (name, initial_members) => request('POST', '/api/groups', { name, initial_members }),
  group: (id) => request('GET', `/api/groups/${enc(id)}`),
  deleteGroup: (id) => request('DELETE', `/api/groups/${enc(id)}`),
  leaveGroup: (id) => request('POST', `/api/groups/${enc(id)}/leave`),
  transferGroup: (id, newOwner) => request('POST', `/api/groups/${enc(id)}/transfer`, { newOwner }),
  members: (id) => request('GET', `/api/groups/${enc(id)}/members`),
  addMember: (id, username, role) => request('POST', `/api/groups/${enc(id)}/members`, { username, role }),
  removeMember: (id, username) => request('DELETE', `/api/groups/${enc(id)}/members/${enc(username)}`),
  setRole: (id, username, role) => request('PUT', `/api/groups/${enc(id)}/members/${enc(username)}/role`, { role }),
  invite: (id, username) => request('POST', `/api/groups/${enc(id)}/invitations`, { username }),

  invitations: () => request('GET', '/api/invitations'),
  acceptInvitation: (id) => request('POST', `/api/invitations/${enc(id)}/accept`),
  denyInvitation: (id) => request('POST', `/api/invitations/${enc(id)}/deny`),

  sendMessage: (to, content, type) => request('POST', '/api/messages', { to, content, type }),
  messages: (params) => request('GET', `/api/messages${query(params)}`),
  editMessage: (id, content) => request('PATCH', `/api/messages/${enc(id)}`, { content }),
  deleteMessage: (id) => request('DELETE', `/api/messages/${enc(id)}`),

  conversations: (params) => request('GET', `/api/conversations${query(params)}`),
};
