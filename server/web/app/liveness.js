// Liveness challenge on the customer's screen: the server's `liveness.challenge` asks
// for a sequence of screen colours (the light they cast on the face shows in the video)
// or a head turn (an arrow to follow). Plain words, no hurry, nothing that sounds like
// a suspicion; the screen goes back to the call by itself when the steps are done.

import { byId, say, sayWords } from "/common/words.js";

const COLOURS = ["red", "green", "blue"];
const ARROWS = {
  left: ["← 请慢慢把头转向这一边", "← Slowly turn your head this way"],
  right: ["请慢慢把头转向这一边 →", "Slowly turn your head this way →"],
};

let running = null; // {timers, challengeId}

function clear(panel) {
  for (const colour of COLOURS) panel.classList.remove(`flash-${colour}`);
}

export function stopChallenge() {
  if (!running) return;
  for (const timer of running.timers) clearTimeout(timer);
  const panel = byId("liveness");
  clear(panel);
  panel.hidden = true;
  running = null;
}

export function runChallenge(message) {
  stopChallenge();
  const panel = byId("liveness");
  const text = byId("liveness-text");
  const arrow = byId("liveness-arrow");
  if (message.message) sayWords(text, message.message);
  else say(text, "请您看着屏幕，跟着提示做就可以了。", "Please look at the screen and follow the prompts.");
  arrow.textContent = "";
  panel.dataset.challengeId = message.challenge_id;
  panel.dataset.kind = message.kind;
  panel.hidden = false;
  const timers = [];
  for (const step of message.steps || []) {
    const start = Number(step.at_s) * 1000;
    const end = start + Number(step.duration_s) * 1000;
    timers.push(setTimeout(() => {
      clear(panel);
      if (step.colour && COLOURS.includes(step.colour)) panel.classList.add(`flash-${step.colour}`);
      if (step.direction && ARROWS[step.direction]) say(arrow, ...ARROWS[step.direction]);
    }, start));
    timers.push(setTimeout(() => {
      clear(panel);
      arrow.textContent = "";
    }, end));
  }
  timers.push(setTimeout(stopChallenge, Number(message.deadline_s || 10) * 1000));
  running = { timers, challengeId: message.challenge_id };
}
