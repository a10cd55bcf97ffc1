// Amounts in Chinese capital numerals, as on a cheque or a counter slip:
// "50000.00" -> "伍万元整", "100005.30" -> "壹拾万零伍元叁角".

const DIGITS = "零壹贰叁肆伍陆柒捌玖";
const PLACES = ["", "拾", "佰", "仟"];
const GROUPS = ["", "万", "亿", "万亿"];

export function amountInWords(value) {
  const text = String(value).trim().replace(/,/g, "");
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text);
  if (!match) throw new RangeError(`not an amount: ${value}`);
  const whole = match[1].replace(/^0+(?=\d)/, "");
  if (whole.length > 16) throw new RangeError(`amount too large: ${value}`);
  const cents = (match[2] || "").padEnd(2, "0");
  let words = "";
  let zero = false; // a zero seen after a non-zero digit, written before the next one
  if (whole !== "0") {
    const groups = [];
    for (let end = whole.length; end > 0; end -= 4) groups.unshift(whole.slice(Math.max(0, end - 4), end));
    groups.forEach((group, position) => {
      const digits = group.padStart(4, "0");
      let part = "";
      for (let i = 0; i < 4; i += 1) {
        const digit = Number(digits[i]);
        if (digit === 0) {
          if (words || part) zero = true;
        } else {
          if (zero) part += "零";
          zero = false;
          part += DIGITS[digit] + PLACES[3 - i];
        }
      }
      if (part) words += part + GROUPS[groups.length - 1 - position];
    });
    words += "元";
  }
  const jiao = Number(cents[0]);
  const fen = Number(cents[1]);
  if (jiao === 0 && fen === 0) return (words || "零元") + "整";
  if (jiao > 0) words += DIGITS[jiao] + "角";
  else if (words) words += "零";
  if (fen > 0) words += DIGITS[fen] + "分";
  return words;
}

// "50000.00", "CNY" -> "¥50,000.00"
export function amountInFigures(value, currency) {
  const number = Number(String(value).replace(/,/g, ""));
  try {
    return new Intl.NumberFormat("zh-CN", { style: "currency", currency: currency || "CNY" }).format(number);
  } catch {
    return `${value} ${currency || ""}`.trim();
  }
}
