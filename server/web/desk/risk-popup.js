// The desk's risk pop-up (risk.popup): a modal the specialist cannot dismiss without
// acting. Every scripted question needs an answer before proceeding; a block shows the
// referral steps (96110, 110) and can put the payee on the blocked list; a hold can be
// released with a note.

import { api, problemWords } from "/common/api.js";
import { byId, make, say, sayWords } from "/common/words.js";

const DECISION_WORDS = {
  review: ["需要人工核实", "Review needed"],
  hold: ["交易暂停（冷静期）", "On hold (cooling-off)"],
  block: ["已拦截", "Blocked"],
  warn: ["需提醒客户", "Warn the customer"],
  allow: ["通过", "Allowed"],
};

let current = null; // the risk.popup being answered
let ctx = null;

export function openPopup(popup) {
  current = popup;
  const dialog = byId("risk-popup");
  say(byId("risk-decision"), ...(DECISION_WORDS[popup.decision] || [popup.decision, popup.decision]));
  const op = ctx.operation(popup.operation_id);
  if (op && op.params && op.params.amount) {
    say(byId("risk-operation"), `${op.kind} ${op.params.amount} ${op.params.currency || ""} → ${op.params.payee_name || ""}`, "");
  } else {
    byId("risk-operation").replaceChildren();
  }
  const list = byId("risk-reasons");
  list.replaceChildren();
  let index = 0;
  for (const reason of popup.reasons) {
    const item = make("li", { testid: "risk-reason" });
    item.dataset.code = reason.code;
    const text = make("p");
    text.textContent = reason.specialist_text;
    item.append(text);
    reason.questions.forEach((question, n) => {
      index += 1;
      const id = `risk-answer-${index}`;
      const label = make("label", { className: "question" });
      label.htmlFor = id;
      label.textContent = `问 Q${index}: ${question}`;
      const answer = make("textarea", { testid: "risk-answer", className: "question" });
      answer.id = id;
      answer.rows = 1;
      answer.dataset.key = `${reason.code}.${n + 1}`;
      answer.addEventListener("input", updateProceed);
      item.append(label, answer);
    });
    list.append(item);
  }
  byId("risk-error").replaceChildren();
  byId("risk-note").value = "";
  byId("risk-blocked").hidden = true;
  byId("risk-held").hidden = true;
  byId("risk-done").hidden = true;
  byId("risk-review-actions").hidden = false;
  byId("risk-blocklist-result").replaceChildren();
  updateProceed();
  if (popup.decision === "block") showBlocked(popup.referral);
  else if (popup.decision === "hold") showHeld(null);
  if (!dialog.open) dialog.showModal();
}

function answers() {
  const found = {};
  for (const field of document.querySelectorAll('[data-testid="risk-answer"]')) {
    found[field.dataset.key] = field.value.trim();
  }
  return found;
}

function updateProceed() {
  const all = Object.values(answers());
  byId("risk-proceed").disabled = all.some((text) => !text);
}

async function review(action) {
  const popup = current;
  if (!popup) return;
  const note = byId("risk-note").value.trim();
  try {
    const operation = await api("POST", `/api/v1/operations/${popup.operation_id}/review`, {
      token: ctx.token(),
      body: { action, answers: answers(), ...(note ? { note } : {}) },
    });
    ctx.onOperation(operation);
  } catch (failure) {
    sayWords(byId("risk-error"), problemWords(failure));
  }
}

export function syncPopup(operation) {
  if (!current || current.operation_id !== operation.operation_id) return;
  if (operation.state === "blocked") showBlocked(operation.referral);
  else if (operation.state === "held") showHeld(operation.hold_until);
  else if (operation.state !== "awaiting_review") closePopup();
}

function showBlocked(referral) {
  byId("risk-review-actions").hidden = true;
  byId("risk-held").hidden = true;
  byId("risk-blocked").hidden = false;
  byId("risk-done").hidden = false;
  const steps = referral && referral.length ? referral : [
    { number: "96110", zh: "请客户拨打 96110 全国反诈专线。", en: "Refer the customer to the anti-fraud line 96110." },
    { number: "110", zh: "如已转出资金或受到威胁，请报警 110。", en: "If money has left or there is a threat, call 110." },
  ];
  const list = byId("risk-referral");
  list.replaceChildren();
  for (const step of steps) {
    const item = make("li");
    item.dataset.number = step.number;
    say(item, `${step.number}：${step.zh}`, step.en);
    list.append(item);
  }
}

function showHeld(until) {
  byId("risk-review-actions").hidden = true;
  byId("risk-blocked").hidden = true;
  byId("risk-held").hidden = false;
  byId("risk-done").hidden = false;
  if (until) say(byId("risk-held-until"), `冷静期至 ${until}`, `Cooling off until ${until}`);
}

async function blockPayee() {
  const popup = current;
  const op = popup && ctx.operation(popup.operation_id);
  const account = op?.params?.payee_account;
  const result = byId("risk-blocklist-result");
  if (!account) {
    say(result, "找不到收款账号。", "No payee account on this operation.");
    return;
  }
  try {
    await api("POST", "/api/v1/risk/blocked-payees", {
      token: ctx.token(),
      body: { account_no: account, reason: byId("risk-blocklist-reason").value.trim() || "fraud", operation_id: popup.operation_id },
    });
    result.dataset.done = "true";
    say(result, "已加入拦截名单。", "The payee is on the blocked list.");
  } catch (failure) {
    sayWords(result, problemWords(failure));
  }
}

async function releaseHold() {
  const popup = current;
  const note = byId("risk-release-note").value.trim();
  if (!popup) return;
  if (!note) {
    say(byId("risk-error"), "解除暂停需要写明理由。", "Releasing a hold needs a note saying why.");
    return;
  }
  try {
    const operation = await api("POST", `/api/v1/operations/${popup.operation_id}/review`, {
      token: ctx.token(),
      body: { action: "proceed", note },
    });
    ctx.onOperation(operation);
  } catch (failure) {
    sayWords(byId("risk-error"), problemWords(failure));
  }
}

function closePopup() {
  current = null;
  const dialog = byId("risk-popup");
  if (dialog.open) dialog.close();
}

function keepPopupOpen(event) {
  // Escape must not dismiss an unanswered review: the specialist has to act.
  if (current) event.preventDefault();
}

// ctx: {token(): string, operation(id): operation or undefined, onOperation(operation)}
export function installRiskPopup(context) {
  ctx = context;
  byId("risk-proceed").addEventListener("click", () => review("proceed"));
  byId("risk-hold").addEventListener("click", () => review("hold"));
  byId("risk-block").addEventListener("click", () => review("block"));
  byId("risk-blocklist").addEventListener("click", blockPayee);
  byId("risk-release").addEventListener("click", releaseHold);
  byId("risk-done").addEventListener("click", closePopup);
  const dialog = byId("risk-popup");
  dialog.addEventListener("cancel", keepPopupOpen);
  dialog.addEventListener("close", () => {
    if (current && !dialog.open && byId("risk-done").hidden) dialog.showModal();
  });
}
