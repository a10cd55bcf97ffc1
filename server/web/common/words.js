// Every visible string is Chinese first, then English: one helper for both.

export function say(element, zh, en) {
  element.replaceChildren();
  const first = document.createElement("span");
  first.lang = "zh-CN";
  first.textContent = zh;
  element.append(first);
  if (en) {
    const second = document.createElement("span");
    second.lang = "en";
    second.className = "en";
    second.textContent = en;
    element.append(" ", second);
  }
  return element;
}

export function sayWords(element, words) {
  return say(element, words?.zh ?? "", words?.en ?? "");
}

export function make(tag, { testid, className, text } = {}) {
  const element = document.createElement(tag);
  if (testid) element.dataset.testid = testid;
  if (className) element.className = className;
  if (text) say(element, text[0], text[1]);
  return element;
}

export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return element;
}
