// HTTP calls to the Cloud Branch API (same origin), with problem details as errors.

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || (status === 0 ? "network" : "http_error");
    this.detail = problem.detail || "";
    this.retryAfter = retryAfter;
  }
}

export async function api(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", // tokens travel in the Authorization header only, never cookies
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, { code: "network", detail: String(error) }, null);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    throw new ApiError(response.status, data || {}, Number.isFinite(retry) ? retry : null);
  }
  return data;
}

// Plain words for the errors a person can do something about; the server's own
// detail otherwise.
export function problemWords(error) {
  switch (error.code) {
    case "invalid_credentials":
      return { zh: "用户名或密码不对，请再试一次。", en: "Wrong username or password. Please try again." };
    case "too_many_attempts": {
      const wait = error.retryAfter ?? 60;
      return {
        zh: `尝试次数太多，请 ${wait} 秒后再试。`,
        en: `Too many attempts. Please wait ${wait} seconds and try again.`,
      };
    }
    case "service_unavailable":
      return { zh: "服务暂时不可用，请稍后再试。", en: "The service is unavailable for a moment; try again shortly." };
    case "network":
      return { zh: "网络连接失败，请检查网络。", en: "Could not reach the server; check the network." };
    case "offer_expired":
      return { zh: "这个来电已被收回或已过期。", en: "This call offer has expired or was withdrawn." };
    case "answers_required":
      return { zh: "每个问题都要先问清楚并填写回答。", en: "Every scripted question needs an answer first." };
    default:
      return { zh: `操作没有成功：${error.detail || error.code}`, en: `That did not work: ${error.detail || error.code}` };
  }
}
