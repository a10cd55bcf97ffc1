// The staff login form the desk and the wallboard share (#login-username,
// #login-password, #login-submit, #login-error): checks the fields, logs in, and
// refuses an account of the wrong role in plain words.

import { api, problemWords } from "/common/api.js";
import { byId, say, sayWords } from "/common/words.js";

// Resolves to { answer, username } once logged in as a role `accepts` takes, or
// null when the form said why not (empty fields, wrong role, a refused login).
export async function staffLogin(event, { accepts, wrongRole }) {
  event.preventDefault();
  const error = byId("login-error");
  error.replaceChildren();
  const username = byId("login-username").value.trim();
  const password = byId("login-password").value;
  if (!username || !password) {
    say(error, "请输入用户名和密码。", "Enter your username and password.");
    return null;
  }
  const submit = byId("login-submit");
  submit.disabled = true;
  try {
    const answer = await api("POST", "/api/v1/desk/login", { body: { username, password } });
    if (!accepts(answer.role)) {
      say(error, wrongRole.zh, wrongRole.en);
      return null;
    }
    return { answer, username };
  } catch (failure) {
    sayWords(error, problemWords(failure));
    return null;
  } finally {
    submit.disabled = false;
  }
}
