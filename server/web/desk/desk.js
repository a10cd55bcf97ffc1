// The specialist desk: log in, presence, offers, video (the desk offers), operations,
// the risk pop-up, end and wrap-up. Speaks only the public API and socket contract.

import { api, problemWords } from "/common/api.js";
import { Channel } from "/common/socket.js";
import { MediaLink, localStream } from "/common/rtc.js";
import { staffLogin } from "/common/login.js";
import { byId, say, sayWords } from "/common/words.js";
import { installRiskPopup, openPopup, syncPopup } from "/desk/risk-popup.js";
import { clearIntegrity, showIntegrity, showLiveness } from "/desk/integrity.js";

const SOCKET_WORDS = {
  offline: ["未连接", "Not connected"],
  connecting: ["正在连接…", "Connecting…"],
  connected: ["已连接", "Connected"],
  reconnecting: ["连接中断，正在重连…", "Connection lost, reconnecting…"],
  replaced: ["已在别处打开（4409），本页不再接听", "Opened elsewhere (4409): this page no longer takes calls"],
  unauthorized: ["登录已失效，请重新登录", "Login expired; please log in again"],
  closed: ["已断开", "Disconnected"],
};

const CALL_WORDS = {
  connecting: ["正在接通视频…", "Connecting video…"],
  connected: ["视频通话中", "On video"],
  reconnecting: ["客户网络中断，正在自动恢复…", "The customer's connection dropped; resuming by itself…"],
  ended: ["通话已结束", "Call ended"],
};

const OPERATION_STATES = {
  awaiting_liveness: ["等待客户完成本人确认（活体检测）", "Waiting for the customer's liveness check"],
  awaiting_review: ["等待您核实", "Waiting for your review"],
  awaiting_confirmation: ["等待客户在手机上确认", "Waiting for the customer to confirm"],
  held: ["已暂停", "On hold"],
  blocked: ["已拦截", "Blocked"],
  executed: ["已办理完成", "Done"],
  rejected: ["客户已拒绝", "Refused by the customer"],
  failed: ["办理失败", "Failed"],
};

const state = {
  token: null,
  me: null,
  channel: null,
  presence: "away",
  call: null, // {call_id, customer, context}
  link: null,
  links: 0, // peer connections built so far (a restart builds a new one)
  iceServers: [],
  operations: new Map(),
  offers: new Map(),
};

window.cloudbranchDesk = {
  state,
  framesDecoded: async () => (state.link ? state.link.framesDecoded() : 0),
};

function setSocket(name) {
  if (name === "reconnecting" && state.link) {
    // Client guide: after a drop the old peer connection cannot be reused; the
    // server sends media.restart once both parties are back.
    state.link.close();
    state.link = null;
    if (state.call) setCallState("reconnecting");
  }
  const element = byId("socket-state");
  element.dataset.state = name;
  say(element, ...(SOCKET_WORDS[name] || SOCKET_WORDS.offline));
  if (name === "unauthorized") showLogin();
}

function setCallState(name) {
  const element = byId("call-state");
  element.dataset.state = name;
  say(element, ...CALL_WORDS[name]);
}

function showLogin() {
  byId("login-view").hidden = false;
  byId("desk-view").hidden = true;
}

async function login(event) {
  const done = await staffLogin(event, {
    accepts: (role) => !role || role === "specialist",
    wrongRole: {
      zh: "这是主管账号，请使用主管看板。",
      en: "This is a supervisor account; use the supervisor wallboard.",
    },
  });
  if (!done) return;
  const { answer, username } = done;
  state.token = answer.token;
  state.me = answer;
  byId("login-view").hidden = true;
  byId("desk-view").hidden = false;
  say(byId("who"), `${answer.display_name}（${username}）`, "");
  showPresence();
  state.channel = new Channel({ token: state.token, onMessage, onState: setSocket });
  state.channel.start();
}

function showPresence() {
  const button = byId("presence-toggle");
  const available = state.presence === "available";
  button.setAttribute("aria-pressed", String(available));
  if (available) say(button, "暂停接听", "Go away");
  else say(button, "开始接听", "Go available");
  const label = byId("presence-state");
  if (available) say(label, "状态：可接听", "State: available");
  else say(label, "状态：暂离", "State: away");
}

async function togglePresence() {
  const wanted = state.presence === "available" ? "away" : "available";
  try {
    const answer = await api("PUT", "/api/v1/desk/presence", { token: state.token, body: { state: wanted } });
    state.presence = answer.state;
    showPresence();
  } catch (failure) {
    sayWords(byId("presence-state"), problemWords(failure));
  }
}

// ---------------------------------------------------------------- socket messages

function onMessage(message) {
  switch (message.type) {
    case "call.offered":
      return showOffer(message);
    case "call.offer_withdrawn":
      return removeOffer(message.offer_id);
    case "presence.updated":
      state.presence = message.state;
      return showPresence();
    case "media.start":
    case "media.restart":
      return startMedia(message);
    case "media.notice":
      return showNotice(message);
    case "webrtc.answer":
    case "webrtc.ice":
      if (state.link && message.call_id === state.link.callId) state.link.handle(message);
      return undefined;
    case "risk.popup":
      return openPopup(message);
    case "video.integrity":
      return showIntegrity(message);
    case "liveness.result":
      return showLiveness(message);
    case "operation.updated":
      return showOperation(message.operation);
    case "call.ended":
      clearIntegrity();
      return callEnded(message);
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------- offers

function describeContext(context) {
  if (!context) return ["", ""];
  const redirect = context.redirect;
  if (redirect && redirect.kind === "password_locked") {
    return ["来自手机银行：密码已锁定", "From mobile banking: password locked"];
  }
  if (redirect && redirect.kind === "transfer_over_limit") {
    const c = redirect.context || redirect;
    const amount = c.amount ? `${c.amount} ${c.currency || ""}`.trim() : "";
    const payee = c.payee_name || c.payee_account || "";
    return [`来自手机银行：转账超限 ${amount} → ${payee}`, `From mobile banking: transfer over limit, ${amount} to ${payee}`];
  }
  const intent = context.intent ? `事由 ${context.intent}` : "";
  return [`${intent} 优先级 ${context.priority}`.trim(), `${context.intent ? `intent ${context.intent}, ` : ""}priority ${context.priority}`];
}

function showOffer(offer) {
  if (state.offers.has(offer.offer_id)) return;
  const card = byId("offer-template").content.firstElementChild.cloneNode(true);
  card.dataset.offerId = offer.offer_id;
  const customer = offer.customer || {};
  say(card.querySelector(".offer-title"), "新来电", "Incoming call");
  const dialect = offer.context?.dialect || customer.preferred_dialect || "—";
  say(
    card.querySelector(".offer-customer"),
    `${customer.display_name || "客户"}，${customer.age ?? "?"} 岁，方言 ${dialect}`,
    `age ${customer.age ?? "?"}, dialect ${dialect}`,
  );
  say(card.querySelector(".offer-context"), ...describeContext(offer.context));
  const deadline = Date.now() + offer.expires_in_s * 1000;
  const countdown = card.querySelector(".offer-countdown");
  const tick = () => {
    const left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    say(countdown, `剩余 ${left} 秒`, `${left} s left`);
    if (left === 0) removeOffer(offer.offer_id);
  };
  tick();
  const timer = setInterval(tick, 500);
  card.querySelector(".offer-accept").addEventListener("click", () => accept(offer, card));
  card.querySelector(".offer-decline").addEventListener("click", () => decline(offer));
  state.offers.set(offer.offer_id, { card, timer });
  byId("offers").append(card);
}

function removeOffer(offerId) {
  const entry = state.offers.get(offerId);
  if (!entry) return;
  clearInterval(entry.timer);
  entry.card.remove();
  state.offers.delete(offerId);
}

async function accept(offer, card) {
  // media.start may arrive before the accept's answer does: the call is ours from now.
  state.call = { call_id: offer.call_id, customer: offer.customer, context: offer.context };
  try {
    await api("POST", `/api/v1/calls/${offer.call_id}/accept`, { token: state.token, body: { offer_id: offer.offer_id } });
    removeOffer(offer.offer_id);
    state.operations.clear();
    byId("op-state").replaceChildren();
    byId("media-notice").hidden = true;
    const customer = offer.customer || {};
    say(byId("caller"), `${customer.display_name || ""}，${customer.age ?? "?"} 岁`, `age ${customer.age ?? "?"}`);
    byId("call-panel").hidden = false;
    byId("wrapup-panel").hidden = true;
    if (byId("call-state").dataset.state !== "connected") setCallState("connecting");
  } catch (failure) {
    state.call = null;
    if (state.link) state.link.close();
    state.link = null;
    sayWords(card.querySelector(".offer-error"), problemWords(failure));
    if (failure.code === "offer_expired") setTimeout(() => removeOffer(offer.offer_id), 3000);
  }
}

async function decline(offer) {
  removeOffer(offer.offer_id);
  try {
    await api("POST", `/api/v1/calls/${offer.call_id}/decline`, { token: state.token, body: { offer_id: offer.offer_id } });
  } catch {
    // Already withdrawn or expired: either way it is gone from this desk.
  }
}

// ---------------------------------------------------------------- media

function startMedia(message) {
  if (!state.call || message.call_id !== state.call.call_id) return;
  if (message.ice_servers) state.iceServers = message.ice_servers;
  if (state.link) {
    state.link.close();
    if (message.type === "media.restart") setCallState("reconnecting");
  }
  state.links += 1;
  state.link = new MediaLink({
    channel: state.channel,
    callId: message.call_id,
    role: message.role || "offerer", // the desk is the offerer (client guide)
    iceServers: state.iceServers,
    getStream: () =>
      localStream(byId("local-video"), () =>
        showNotice({ message: { zh: "没有可用的摄像头：客户看不到您的画面。", en: "No camera available: the customer cannot see you." } })),
    remoteVideo: byId("remote-video"),
    onState: (pcState) => {
      if (pcState === "connected") setCallState("connected");
      else if (pcState === "disconnected" || pcState === "failed") setCallState("reconnecting");
    },
  });
}

function showNotice(message) {
  const notice = byId("media-notice");
  notice.hidden = false;
  if (message.message) sayWords(notice, message.message);
  else if (message.recording) say(notice, "本次通话正在录音录像", "This call is being recorded");
}

function toggleTrack(kind, button, onWords, offWords) {
  localStream().then((stream) => {
    const tracks = kind === "audio" ? stream.getAudioTracks() : stream.getVideoTracks();
    const muted = button.getAttribute("aria-pressed") !== "true";
    for (const track of tracks) track.enabled = !muted;
    button.setAttribute("aria-pressed", String(muted));
    say(button, ...(muted ? offWords : onWords));
  });
}

async function endCall() {
  if (!state.call) return;
  try {
    await api("POST", `/api/v1/calls/${state.call.call_id}/end`, { token: state.token });
    toWrapUp();
  } catch (failure) {
    sayWords(byId("op-error"), problemWords(failure));
  }
}

function toWrapUp() {
  if (state.link) state.link.close();
  state.link = null;
  setCallState("ended");
  byId("call-panel").hidden = true;
  byId("wrapup-panel").hidden = false;
}

function callEnded(message) {
  if (!state.call || message.call_id !== state.call.call_id) return;
  toWrapUp();
}

async function wrapUp(event) {
  event.preventDefault();
  if (!state.call) return;
  const note = byId("wrapup-note").value.trim();
  try {
    await api("POST", `/api/v1/calls/${state.call.call_id}/wrap-up`, {
      token: state.token,
      body: { code: byId("wrapup-code").value, ...(note ? { note } : {}) },
    });
    state.call = null;
    byId("wrapup-panel").hidden = true;
    byId("wrapup-note").value = "";
    state.presence = "available"; // the server makes the specialist available again
    showPresence();
  } catch (failure) {
    sayWords(byId("wrapup-error"), problemWords(failure));
  }
}

// ---------------------------------------------------------------- operations

function showOperationFields() {
  const kind = byId("op-kind").value;
  byId("op-money").hidden = !["transfer", "time_deposit"].includes(kind);
  byId("op-transfer").hidden = kind !== "transfer";
  byId("op-limit").hidden = kind !== "limit_change";
  // The counter's kinds: each field says which kinds it belongs to (data-for).
  let any = false;
  for (const field of byId("op-counter").querySelectorAll("[data-for]")) {
    const shown = field.dataset.for.split(" ").includes(kind);
    field.hidden = !shown;
    any = any || shown;
  }
  byId("op-counter").hidden = !any;
}

function counterParams(kind) {
  const value = (id) => byId(id).value.trim();
  const account = value("op-account");
  const named = account ? { account } : {};
  if (kind === "passbook_statement") return named;
  if (kind === "loss_report") return { medium: value("op-medium"), stage: value("op-stage"), ...named };
  if (kind === "replacement") return { medium: value("op-medium"), ...named };
  if (kind === "contact_change") return { phone: value("op-phone") };
  if (kind === "certificate") {
    const params = { type: value("op-cert-type"), ...named };
    if (value("op-from") && params.type === "statement") params.from = value("op-from");
    if (value("op-to")) params.to = value("op-to");
    return params;
  }
  return null;
}

function operationParams(kind) {
  const value = (id) => byId(id).value.trim();
  if (kind === "transfer") {
    return {
      amount: value("op-amount"),
      currency: value("op-currency") || "CNY",
      payee_account: value("op-payee-account"),
      payee_name: value("op-payee-name"),
      payee_bank: value("op-payee-bank"),
    };
  }
  if (kind === "time_deposit") return { amount: value("op-amount"), currency: value("op-currency") || "CNY" };
  if (kind === "limit_change") {
    return { channel: value("op-channel"), new_limit: value("op-new-limit"), currency: value("op-currency") || "CNY" };
  }
  return counterParams(kind) || {};
}

async function startOperation(event) {
  event.preventDefault();
  const error = byId("op-error");
  error.replaceChildren();
  if (!state.call) return;
  const kind = byId("op-kind").value;
  const statement = byId("op-statement").value.trim();
  try {
    const operation = await api("POST", `/api/v1/calls/${state.call.call_id}/operations`, {
      token: state.token,
      body: { kind, params: operationParams(kind), ...(statement ? { customer_statement: statement } : {}) },
    });
    showOperation(operation);
  } catch (failure) {
    sayWords(error, problemWords(failure));
  }
}

function showOperation(operation) {
  if (!operation || !operation.operation_id) return;
  state.operations.set(operation.operation_id, operation);
  const words = OPERATION_STATES[operation.state] || [operation.state, operation.state];
  const element = byId("op-state");
  element.dataset.state = operation.state;
  element.dataset.operationId = operation.operation_id;
  say(element, `业务 ${operation.kind}：${words[0]}`, `${operation.kind}: ${words[1]}`);
  syncPopup(operation);
}

// ---------------------------------------------------------------- wiring

function init() {
  byId("login-form").addEventListener("submit", login);
  byId("presence-toggle").addEventListener("click", togglePresence);
  byId("call-end").addEventListener("click", endCall);
  byId("wrapup-form").addEventListener("submit", wrapUp);
  byId("op-form").addEventListener("submit", startOperation);
  byId("op-kind").addEventListener("change", showOperationFields);
  byId("mute-mic").addEventListener("click", (e) =>
    toggleTrack("audio", e.currentTarget, ["麦克风静音", "Mute microphone"], ["打开麦克风", "Unmute microphone"]));
  byId("mute-cam").addEventListener("click", (e) =>
    toggleTrack("video", e.currentTarget, ["关闭摄像头", "Camera off"], ["打开摄像头", "Camera on"]));
  installRiskPopup({
    token: () => state.token,
    operation: (id) => state.operations.get(id),
    onOperation: showOperation,
  });
  showOperationFields();
  setSocket("offline");
}

init();
