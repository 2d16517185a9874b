// The PIN guards each action: a token is asked for one flow (add a card, stop one, deposit into or
// withdraw from one) and kept, in memory only, for as long as that flow's dialog is open. forget()
// when the dialog closes or completes, so the wall never leaves an authenticated state behind for
// the next passer-by.

const EXPIRY_MARGIN_MS = 5_000;

export function createAuth({ pinPad, now = () => Date.now() }) {
  // One protected flow: action is 'add', 'stop', 'deposit' or 'withdraw' (the server refuses the token
  // for anything else).
  function flow(action, prompt) {
    let token = null;
    let expiresAt = 0;

    function current() {
      return token && now() < expiresAt - EXPIRY_MARGIN_MS ? token : null;
    }

    async function ensure(ask = prompt) {
      const valid = current();
      if (valid) return valid;
      const answer = await pinPad.request(ask, action);
      if (!answer) return null;
      token = answer.token;
      expiresAt = now() + answer.expiresIn * 1000;
      return token;
    }

    function forget() {
      token = null;
      expiresAt = 0;
    }

    // Runs work(token); if the server says the token is no longer valid, asks once more.
    // Returns undefined when the person cancels the PIN pad.
    async function withToken(work) {
      let valid = await ensure();
      if (!valid) return undefined;
      try {
        return await work(valid);
      } catch (error) {
        if (error.status !== 401) throw error;
        forget();
        valid = await ensure('PIN expired: enter it again');
        if (!valid) return undefined;
        return work(valid);
      }
    }

    return { action, current, ensure, forget, withToken };
  }

  return { flow };
}
