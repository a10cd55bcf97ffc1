// The supervisor wallboard: queue per dialect, service level, specialists and their
// calls, a call's timeline (and recording state once recordings exist), audit check.
// A short poll of the public API (every 2 s) keeps it live.

import { api, problemWords } from "/common/api.js";
import { staffLogin } from "/common/login.js";
import { byId, make, say, sayWords } from "/common/words.js";

const POLL_MS = 2000;
const STATE_WORDS = {
  offline: "离线 offline",
  available: "可接听 available",
  away: "暂离 away",
  reserved: "来电中 offered",
  busy: "通话中 busy",
  wrap_up: "小结中 wrap-up",
};
const CALL_STATE_WORDS = {
  queued: "排队 queued",
  offered: "振铃 offered",
  connecting: "接通中 connecting",
  active: "通话中 active",
  wrap_up: "小结 wrap-up",
  ended: "已结束 ended",
};

const state = { token: null, timer: null, timelineCall: null, staff: new Map() };

async function login(event) {
  const done = await staffLogin(event, {
    accepts: (role) => role === "supervisor",
    wrongRole: { zh: "这个账号不是主管账号。", en: "This account is not a supervisor account." },
  });
  if (!done) return;
  state.token = done.answer.token;
  byId("login-view").hidden = true;
  byId("board").hidden = false;
  refresh();
}

function cell(row, text, { stateName } = {}) {
  const td = document.createElement("td");
  td.textContent = text;
  if (stateName) td.dataset.state = stateName;
  row.append(td);
  return td;
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  const s = Math.round(value);
  return s < 60 ? `${s} 秒 s` : `${Math.floor(s / 60)} 分 ${s % 60} 秒 (${s} s)`;
}

function percent(value) {
  return value === null || value === undefined ? "—" : `${Math.round(value * 1000) / 10}%`;
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    const token = state.token;
    const [stats, specialists, calls] = await Promise.all([
      api("GET", "/api/v1/stats", { token }),
      api("GET", "/api/v1/specialists", { token }),
      api("GET", "/api/v1/supervisor/calls", { token }),
    ]);
    showQueue(stats);
    showServiceLevel(stats);
    showSpecialists(specialists, calls);
    showCalls(calls);
    if (state.timelineCall) await showTimeline(state.timelineCall);
    const now = new Date().toLocaleTimeString("zh-CN", { hour12: false });
    say(byId("refreshed"), `更新于 ${now}`, `updated ${now}`);
  } catch (failure) {
    sayWords(byId("refreshed"), problemWords(failure));
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

function showQueue(stats) {
  const body = byId("queue-table").tBodies[0];
  body.replaceChildren();
  const dialects = Object.keys(stats.queue).sort();
  if (dialects.length === 0) {
    const row = body.insertRow();
    cell(row, "无人排队 · nobody waiting").colSpan = 3;
    return;
  }
  for (const dialect of dialects) {
    const row = body.insertRow();
    row.dataset.dialect = dialect;
    cell(row, dialect);
    cell(row, String(stats.queue[dialect].waiting)).dataset.waiting = String(stats.queue[dialect].waiting);
    cell(row, seconds(stats.queue[dialect].longest_wait_s));
  }
}

function showServiceLevel(stats) {
  const list = byId("service-level");
  list.replaceChildren();
  const entries = [
    ["60 秒内接通率 · answered within 60 s", percent(stats.service_level)],
    ["放弃率 · abandonment", percent(stats.abandonment)],
    ["今日接通 · answered today", String(stats.answered_today)],
    ["平均处理时长 · average handle time", seconds(stats.average_handle_time_s)],
  ];
  for (const [name, value] of entries) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    list.append(dt, dd);
  }
}

function showSpecialists(specialists, calls) {
  const current = new Map();
  for (const call of calls) {
    if (call.specialist_id && call.state !== "ended") current.set(call.specialist_id, call.call_id);
  }
  state.staff = new Map(specialists.map((s) => [s.specialist_id, s.display_name]));
  const body = byId("specialists-table").tBodies[0];
  body.replaceChildren();
  for (const s of specialists) {
    const row = body.insertRow();
    row.dataset.username = s.username;
    row.dataset.state = s.state;
    cell(row, s.display_name);
    cell(row, s.username);
    cell(row, Object.keys(s.dialects).join(" "));
    cell(row, STATE_WORDS[s.state] || s.state, { stateName: s.state });
    cell(row, current.get(s.specialist_id) || "—");
  }
}

function showCalls(calls) {
  const body = byId("calls-table").tBodies[0];
  body.replaceChildren();
  for (const call of calls) {
    const row = body.insertRow();
    row.dataset.callId = call.call_id;
    row.dataset.state = call.state;
    cell(row, call.call_id);
    cell(row, CALL_STATE_WORDS[call.state] || call.state, { stateName: call.state });
    cell(row, call.dialect || "—");
    cell(row, state.staff.get(call.specialist_id) || call.specialist_id || "—");
    cell(row, new Date(call.created_at).toLocaleTimeString("zh-CN", { hour12: false }));
    const action = document.createElement("td");
    const button = make("button", { text: ["时间线", "Timeline"] });
    button.type = "button";
    button.dataset.callId = call.call_id;
    button.setAttribute("aria-label", `时间线 Timeline ${call.call_id}`);
    button.addEventListener("click", () => {
      state.timelineCall = call.call_id;
      showTimeline(call.call_id);
    });
    action.append(button);
    row.append(action);
  }
}

async function showTimeline(callId) {
  byId("timeline-call").textContent = callId;
  const list = byId("call-timeline");
  try {
    const timeline = await api("GET", `/api/v1/calls/${callId}/timeline`, { token: state.token });
    list.replaceChildren();
    for (const event of timeline.events) {
      const item = document.createElement("li");
      item.dataset.kind = event.kind;
      const when = new Date(event.at).toLocaleTimeString("zh-CN", { hour12: false });
      item.textContent = `${when}  ${event.kind}  ${event.actor_role || ""} ${event.actor_id || ""}`;
      list.append(item);
    }
  } catch (failure) {
    list.replaceChildren(sayWords(make("li"), problemWords(failure)));
  }
  await showRecording(callId);
}

// Recordings exist once the media node records calls; until then the endpoint is
// absent (404) and nothing is shown.
async function showRecording(callId) {
  const section = byId("recording");
  try {
    const recording = await api("GET", `/api/v1/calls/${callId}/recording`, { token: state.token });
    section.hidden = false;
    section.dataset.state = recording.state;
    let verdict = ["", ""];
    if (recording.state !== "none") {
      const check = await api("GET", `/api/v1/calls/${callId}/recording/verify`, { token: state.token });
      verdict = check.ok ? ["，校验通过", ", verified"] : [`，第 ${check.first_bad} 段校验失败`, `, segment ${check.first_bad} fails verification`];
    }
    say(section, `录像：${recording.state}${verdict[0]}`, `Recording: ${recording.state}${verdict[1]}`);
  } catch {
    section.hidden = true;
  }
}

async function verifyAudit() {
  const result = byId("audit-result");
  try {
    const answer = await api("GET", "/api/v1/audit/verify", { token: state.token });
    result.dataset.ok = String(answer.ok);
    result.className = answer.ok ? "ok" : "bad";
    if (answer.ok) say(result, `审计链完整（${answer.entries} 条）`, `Audit chain intact (${answer.entries} entries)`);
    else say(result, `审计链有误：第 ${answer.first_bad_seq} 条`, `Audit chain broken at entry ${answer.first_bad_seq}`);
  } catch (failure) {
    sayWords(result, problemWords(failure));
  }
}

byId("login-form").addEventListener("submit", login);
byId("audit-verify").addEventListener("click", verifyAudit);
