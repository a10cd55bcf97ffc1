// The customer's video integrity on the desk: the status the media node's analysis
// gives (`video.integrity`) and each liveness check's result (`liveness.result`).
// Worded for the specialist: what was seen, never an accusation of the customer.

import { byId, say } from "/common/words.js";

const STATUS = {
  ok: ["视频正常", "Video looks live"],
  suspect: ["视频存疑，请核实", "Video needs a check"],
  unknown: ["视频未分析", "Video not analysed"],
};

const SIGNALS = {
  video_frozen: ["画面静止不动", "the picture is frozen"],
  video_looped: ["画面在重复播放", "the picture repeats (a replay)"],
  frame_timing_anomaly: ["画面节奏异常（可能是虚拟摄像头）", "frame timing no camera produces"],
  face_absent: ["画面中没有人脸", "no face in the picture"],
  multiple_faces: ["画面中有多人", "more than one face in the picture"],
  liveness_failed: ["活体检测未通过", "the liveness check did not pass"],
};

const REASONS = {
  followed: ["客户已按提示完成", "the customer followed the prompts"],
  colour_not_seen: ["画面中未见屏幕颜色变化", "the screen colours did not show in the video"],
  face_did_not_move: ["画面中头部未按提示转动", "the head did not turn as prompted"],
  no_face: ["画面中未见人脸", "no face was seen"],
  no_video: ["视频不足，无法判断", "too little video to tell"],
};

export function showIntegrity(message) {
  const badge = byId("integrity-status");
  badge.hidden = false;
  badge.dataset.status = message.status;
  const active = (message.signals || []).filter((s) => !s.until).map((s) => s.code);
  const words = STATUS[message.status] || STATUS.unknown;
  const zh = [words[0], ...active.map((c) => (SIGNALS[c] || [c])[0])].join("：");
  const en = [words[1], ...active.map((c) => (SIGNALS[c] || [c, c])[1])].join(": ");
  say(badge, zh, en);
}

export function showLiveness(message) {
  const result = byId("liveness-result");
  result.hidden = false;
  result.dataset.passed = String(message.passed);
  const reason = REASONS[message.reason] || [message.reason, message.reason];
  const head = message.passed ? ["活体检测通过", "Liveness check passed"] : ["活体检测未通过", "Liveness check did not pass"];
  say(result, `${head[0]}：${reason[0]}`, `${head[1]}: ${reason[1]}`);
}

export function clearIntegrity() {
  byId("integrity-status").hidden = true;
  byId("liveness-result").hidden = true;
}
