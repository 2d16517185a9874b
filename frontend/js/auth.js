// Holds the session token from the PIN pad (in memory only) and asks for the PIN when needed.

const EXPIRY_MARGIN_MS = 5_000;

export function createAuth({ pinPad, now = () => Date.now() }) {
  let token = null;
  let expiresAt = 0;

  function current() {
    return token && now() < expiresAt - EXPIRY_MARGIN_MS ? token : null;
  }

  async function ensure(prompt) {
    const valid = current();
    if (valid) return valid;
    const answer = await pinPad.request(prompt);
    if (!answer) return null;
    token = answer.token;
    expiresAt = now() + answer.expiresIn * 1000;
    return token;
  }

  function forget() {
    token = null;
    expiresAt = 0;
  }

  // Runs action(token); if the server says the token is no longer valid, asks once more.
  // Returns undefined when the person cancels the PIN pad.
  async function withToken(action, prompt) {
    let valid = await ensure(prompt);
    if (!valid) return undefined;
    try {
      return await action(valid);
    } catch (error) {
      if (error.status !== 401) throw error;
      forget();
      valid = await ensure('PIN expired: enter it again');
      if (!valid) return undefined;
      return action(valid);
    }
  }

  return { current, ensure, forget, withToken };
}
