// The senior-edition reference app: what the bank's app embeds. One big button, the
// wait in plain words, the specialist's video (the app answers), confirmations and
// fraud warnings full screen, and automatic recovery after a drop.
//
// Where the customer token comes from (never a cookie):
//   production: the host app opens /app/#token=<JWT>, or posts
//     {type: "cloudbranch.token", token} to this window (same origin, or the parent
//     frame that embeds it);
//   development mode: a demo customer is picked and the development token endpoint
//     issues the token.

import { api, problemWords } from "/common/api.js";
import { Channel } from "/common/socket.js";
import { MediaLink, localStream } from "/common/rtc.js";
import { byId, say, sayWords } from "/common/words.js";
import { amountInFigures, amountInWords } from "/app/amount.js";
import { runChallenge, stopChallenge } from "/app/liveness.js";

const END_WORDS = {
  completed: ["通话已结束，感谢您的来电。", "The call has ended. Thank you for calling."],
  cancelled: ["您已挂断。", "You hung up."],
  abandoned: ["通话已结束。需要时请再按一次大按钮。", "The call has ended. Tap the big button again whenever you need."],
  failed: ["网络中断太久，通话已结束。请再按一次大按钮，我们马上为您接通。", "The connection was lost for too long, so the call ended. Tap the big button again to be put through."],
  timeout: ["暂时没有专员接听，请稍后再试。", "No specialist could answer this time; please try again later."],
};

const state = {
  token: null,
  channel: null,
  call: null, // {call_id}
  iceServers: [],
  link: null,
  links: 0, // peer connections built so far (a restart builds a new one)
  warnings: [], // risk.warning messages not yet acknowledged, oldest first
  confirm: null, // the operation.confirm_request on screen
  hungUp: false,
  // A scenario redirect's ticket (the deep link's ?ticket=): used by the first call only.
  ticket: new URLSearchParams(location.search).get("ticket"),
};

window.cloudbranchApp = {
  state,
  framesDecoded: async () => (state.link ? state.link.framesDecoded() : 0),
  // What a lift or a tunnel does to the phone: the socket and the peer connection
  // go away at once; the page recovers by itself.
  dropConnection: () => {
    if (state.link) state.link.close();
    if (state.channel) state.channel.drop();
  },
};

function show(view) {
  for (const id of ["pick-view", "need-token", "home-view", "call-view", "call-ended"]) {
    byId(id).hidden = id !== view;
  }
}

// Full-screen panels (confirmation, warning, ringing) cover the page; it must not
// scroll under them.
function covered() {
  const open = ["confirm-dialog", "risk-warning", "ringing"].some((id) => !byId(id).hidden);
  document.body.classList.toggle("covered", open);
}

function status(zh, en) {
  say(byId("status"), zh, en);
}

// ---------------------------------------------------------------- the token

async function start() {
  const fromFragment = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromFragment) {
    history.replaceState(null, "", location.pathname + location.search); // not left in history
    return useToken(fromFragment);
  }
  window.addEventListener("message", (event) => {
    const trusted = event.origin === location.origin || (window.parent !== window && event.source === window.parent);
    if (trusted && event.data && event.data.type === "cloudbranch.token" && typeof event.data.token === "string") {
      if (!state.token) useToken(event.data.token);
    }
  });
  let config = { dev_mode: false };
  try {
    config = await api("GET", "/web/config.json");
  } catch {
    // Treated as production: wait for the host app's token.
  }
  if (!config.dev_mode) {
    show("need-token");
    return undefined;
  }
  const select = byId("customer-select");
  for (let n = 1001; n <= 1020; n += 1) {
    const option = document.createElement("option");
    option.value = `C${n}`;
    option.textContent = `演示客户 C${n} · Demo customer C${n}`;
    select.append(option);
  }
  show("pick-view");
  byId("customer-go").addEventListener("click", async () => {
    try {
      const issued = await api("POST", "/api/v1/dev/tokens", { body: { role: "customer", subject: select.value } });
      useToken(issued.token);
    } catch (failure) {
      sayWords(byId("status"), problemWords(failure));
    }
  });
  return undefined;
}

function useToken(token) {
  state.token = token;
  status("正在连接…", "Connecting…");
  state.channel = new Channel({ token, onMessage, onState: socketState });
  state.channel.start();
}

function socketState(name) {
  if (name === "connected") {
    if (!state.call) {
      show("home-view");
      status("", "");
    } else {
      status("已恢复连接", "Connection restored");
    }
  } else if (name === "reconnecting") {
    if (state.link) state.link.close(); // never reused: media.restart builds a new one
    state.link = null;
    status("网络中断，正在为您恢复，请不要挂断…", "The connection dropped; reconnecting, please stay on…");
  } else if (name === "replaced") {
    status("您在另一台设备上打开了视频客服。", "The video service is open on another device.");
  } else if (name === "unauthorized") {
    status("登录已过期，请从手机银行重新打开。", "Your login expired; please reopen from the mobile banking app.");
  }
}

// ---------------------------------------------------------------- the call

async function placeCall() {
  const button = byId("call-button");
  button.disabled = true;
  try {
    const body = { callback_allowed: true, ...(state.ticket ? { ticket: state.ticket } : {}) };
    const call = await api("POST", "/api/v1/calls", { token: state.token, body });
    state.ticket = null;
    state.call = { call_id: call.call_id };
    state.hungUp = false;
    state.iceServers = call.ice_servers || [];
    show("call-view");
    byId("specialist").replaceChildren();
    byId("callback-offer").hidden = true;
    if (call.wait_message) sayWords(byId("queue-message"), call.wait_message);
    else say(byId("queue-message"), "正在为您排队…", "Finding you a specialist…");
  } catch (failure) {
    sayWords(byId("status"), problemWords(failure));
  } finally {
    button.disabled = false;
  }
}

async function hangUp() {
  if (!state.call) return;
  state.hungUp = true;
  const callId = state.call.call_id;
  try {
    await api("DELETE", `/api/v1/calls/${callId}`, { token: state.token });
  } catch {
    // Already over on the server side: the ended message says so.
  }
  ended({ call_id: callId, end_reason: "cancelled" });
}

function ended(message) {
  if (state.call && message.call_id !== state.call.call_id) return;
  if (state.link) state.link.close();
  state.link = null;
  state.call = null;
  byId("remote-video").srcObject = null;
  const words = message.message ? [message.message.zh, message.message.en] : END_WORDS[message.end_reason] || END_WORDS.completed;
  say(byId("call-ended-text"), ...words);
  byId("call-ended").dataset.reason = message.end_reason;
  show("call-ended");
  status("", "");
}

function onMessage(message) {
  switch (message.type) {
    case "queue.update":
      return queueUpdate(message);
    case "call.assigned":
      return assigned(message);
    case "media.start":
    case "media.restart":
      return startMedia(message);
    case "webrtc.offer":
    case "webrtc.ice":
      return mediaMessage(message);
    case "media.notice": {
      const notice = byId("media-notice");
      notice.hidden = false;
      if (message.message) sayWords(notice, message.message);
      else if (message.recording) say(notice, "本次通话会录音录像。", "This call is recorded.");
      return undefined;
    }
    case "operation.confirm_request":
      return confirmRequest(message);
    case "risk.warning":
      state.warnings.push(message);
      return showWarning();
    case "callback.ringing":
      return ringing(message);
    case "callback.ring_ended":
      byId("ringing").hidden = true;
      return covered();
    case "liveness.challenge":
      return runChallenge(message);
    case "call.ended":
      stopChallenge();
      return ended(message);
    default:
      return undefined;
  }
}

function queueUpdate(message) {
  if (!state.call) state.call = { call_id: message.call_id };
  if (byId("call-view").hidden) show("call-view");
  sayWords(byId("queue-message"), message.message);
  const offer = byId("callback-offer");
  offer.hidden = !message.callback_available;
  if (message.callback_available && message.callback_message) sayWords(byId("callback-text"), message.callback_message);
}

function assigned(message) {
  state.call = { call_id: message.call_id };
  show("call-view");
  byId("callback-offer").hidden = true;
  const name = message.specialist.display_name;
  say(byId("specialist"), `为您服务的是：${name}`, `Your specialist: ${name}`);
  say(byId("queue-message"), "已为您接通服务专员。", "You are through to a specialist.");
}

function newLink(callId, role) {
  if (state.link) state.link.close();
  state.links += 1;
  state.link = new MediaLink({
    channel: state.channel,
    callId,
    role,
    iceServers: state.iceServers,
    getStream: () =>
      localStream(byId("local-video"), () =>
        status("没有打开摄像头，服务专员只能听到您的声音。", "The camera is off: the specialist can only hear you.")),
    remoteVideo: byId("remote-video"),
    onState: (pcState) => {
      if (pcState === "connected") status("", "");
    },
  });
}

function startMedia(message) {
  if (message.ice_servers) state.iceServers = message.ice_servers;
  if (!state.call) state.call = { call_id: message.call_id };
  show("call-view");
  newLink(message.call_id, message.role || "answerer"); // the app answers (client guide)
}

function mediaMessage(message) {
  if (!state.call || message.call_id !== state.call.call_id) return;
  // An offer for a connection that already has one: the desk started over.
  if (!state.link || state.link.isStaleFor(message)) newLink(message.call_id, "answerer");
  state.link.handle(message);
}

async function callback() {
  if (!state.call) return;
  try {
    await api("POST", `/api/v1/calls/${state.call.call_id}/callback`, { token: state.token });
    state.call = null;
    show("home-view");
    status("好的，轮到您时我们会在手机银行里给您回电。", "We will call you back in the app when it is your turn.");
  } catch (failure) {
    sayWords(byId("status"), problemWords(failure));
  }
}

function ringing(message) {
  const panel = byId("ringing");
  sayWords(byId("ringing-text"), message.message);
  panel.dataset.callbackId = message.callback_id;
  panel.hidden = false;
  covered();
  byId("ringing-answer").focus();
}

async function answerRing(answer) {
  const panel = byId("ringing");
  panel.hidden = true;
  covered();
  const id = panel.dataset.callbackId;
  try {
    const result = await api("POST", `/api/v1/callbacks/${id}/${answer ? "answer" : "decline"}`, { token: state.token });
    const callId = result && (result.new_call_id || result.call_id);
    if (answer && callId) {
      state.call = { call_id: callId };
      show("call-view");
      say(byId("queue-message"), "正在为您接通…", "Putting you through…");
    }
  } catch (failure) {
    sayWords(byId("status"), problemWords(failure));
  }
}

// ---------------------------------------------------------------- confirmations

async function confirmRequest(message) {
  state.confirm = message;
  const dialog = byId("confirm-dialog");
  sayWords(byId("confirm-text"), message.summary);
  byId("confirm-figures").replaceChildren();
  byId("confirm-words").replaceChildren();
  byId("confirm-payee").replaceChildren();
  byId("confirm-error").replaceChildren();
  try {
    const operation = await api("GET", `/api/v1/operations/${message.operation_id}`, { token: state.token });
    const params = operation.params || {};
    if (params.amount) {
      say(byId("confirm-figures"), `金额：${amountInFigures(params.amount, params.currency)}`, "");
      if ((params.currency || "CNY") === "CNY") {
        say(byId("confirm-words"), `大写：${amountInWords(params.amount)}`, "");
      }
    }
    if (params.payee_name) {
      say(byId("confirm-payee"), `收款人：${params.payee_name}（${params.payee_bank || ""} 尾号 ${String(params.payee_account || "").slice(-4)}）`,
        `Payee: ${params.payee_name}, account ending ${String(params.payee_account || "").slice(-4)}`);
    }
  } catch {
    // The summary alone is still enough to decide.
  }
  dialog.hidden = false;
  dialog.scrollTop = 0;
  covered();
  byId("confirm-yes").focus({ preventScroll: true });
}

async function answerConfirm(confirmed) {
  const request = state.confirm;
  if (!request) return;
  for (const id of ["confirm-yes", "confirm-no"]) byId(id).disabled = true;
  try {
    const operation = await api("POST", `/api/v1/operations/${request.operation_id}/confirm`, {
      token: state.token,
      body: { confirmed },
    });
    state.confirm = null;
    byId("confirm-dialog").hidden = true;
    covered();
    if (operation.state === "executed") status("已为您办理完成。", "Done.");
    else if (operation.state === "rejected") status("好的，这笔业务不办了。", "All right, it has been stopped.");
    else status("业务没有办成，服务专员会和您说明。", "It did not go through; your specialist will explain.");
  } catch (failure) {
    sayWords(byId("confirm-error"), problemWords(failure));
  } finally {
    for (const id of ["confirm-yes", "confirm-no"]) byId(id).disabled = false;
  }
}

// ---------------------------------------------------------------- fraud warnings

function showWarning() {
  const warning = state.warnings[0];
  const panel = byId("risk-warning");
  if (!warning) {
    panel.hidden = true;
    covered();
    return;
  }
  const text = byId("risk-warning-text");
  text.replaceChildren();
  const zh = document.createElement("p");
  zh.lang = "zh-CN";
  zh.textContent = warning.text.zh;
  const en = document.createElement("p");
  en.lang = "en";
  en.className = "en";
  en.textContent = warning.text.en;
  text.append(zh, en);
  panel.dataset.operationId = warning.operation_id;
  panel.hidden = false;
  panel.scrollTop = 0; // a new warning is read from its beginning
  covered();
  byId("risk-warning-ack").focus({ preventScroll: true });
}

// The acknowledgement is what the server records as the warning shown (with when).
function acknowledgeWarning() {
  const warning = state.warnings[0];
  if (!warning) return;
  if (!state.channel.send({ type: "risk.warning_shown", operation_id: warning.operation_id })) {
    status("网络中断，恢复后请再按一次。", "No connection; press again once it is back.");
    return;
  }
  state.warnings.shift();
  showWarning();
}

// ---------------------------------------------------------------- wiring

byId("call-button").addEventListener("click", placeCall);
byId("hang-up").addEventListener("click", hangUp);
byId("call-ended-ok").addEventListener("click", () => show("home-view"));
byId("callback-accept").addEventListener("click", callback);
byId("ringing-answer").addEventListener("click", () => answerRing(true));
byId("ringing-decline").addEventListener("click", () => answerRing(false));
byId("confirm-yes").addEventListener("click", () => answerConfirm(true));
byId("confirm-no").addEventListener("click", () => answerConfirm(false));
byId("risk-warning-ack").addEventListener("click", acknowledgeWarning);
start();
