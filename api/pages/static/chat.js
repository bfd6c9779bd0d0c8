(() => {
  // The tab keeps its session (conversation id + bearer token) in sessionStorage: nothing in the
  // address bar opens a conversation, and another tab or person cannot continue this one.
  const params = new URLSearchParams(location.search);
  const key = "repay.session";
  let session = JSON.parse(sessionStorage.getItem(key) || "null");
  let cid = session ? session.conversation_id : null;
  const auth = () => ({Authorization: "Bearer " + session.session_token});
  const log = document.getElementById("log"), form = document.getElementById("form");
  const input = document.getElementById("text"), sendBtn = document.getElementById("send");
  const conn = document.getElementById("conn");
  let lastSeq = 0, ws = null, retry = 0, waiting = null, pollTimer = null;

  function add(sender, text, buttons, seq) {
    if (seq && seq <= lastSeq) return;
    if (seq) lastSeq = seq;
    const box = document.createElement("div");
    box.className = "msg " + sender;
    if (sender === "agent") { const w = document.createElement("div"); w.className = "who"; w.textContent = "人工客服"; box.appendChild(w); }
    box.appendChild(document.createTextNode(text));
    if (buttons && buttons.length) {
      const row = document.createElement("div"); row.className = "buttons";
      for (const b of buttons) {
        const btn = document.createElement("button"); btn.type = "button"; btn.textContent = b.title;
        btn.onclick = () => send(b.payload, b.title);
        row.appendChild(btn);
      }
      box.appendChild(row);
    }
    log.appendChild(box); log.scrollTop = log.scrollHeight;
  }
  function status(text) {
    const s = document.createElement("div"); s.className = "status"; s.textContent = text;
    log.appendChild(s); log.scrollTop = log.scrollHeight;
  }
  function typing(on) {
    if (on && !waiting) { waiting = document.createElement("div"); waiting.className = "typing"; waiting.textContent = "对方正在输入…"; log.appendChild(waiting); }
    if (!on && waiting) { waiting.remove(); waiting = null; }
    sendBtn.disabled = on;
  }
  function showTurn(body) {
    typing(false);
    if (body.error) { status(body.error.message || "发送失败，请重试"); return; }
    for (const m of body.messages || []) add(m.sender || "bot", m.text, m.buttons, m.seq);
    if (body.mode === "human") conn.textContent = "人工客服";
  }
  async function poll() {
    try {
      const r = await fetch(`/v1/chat/${cid}/messages?after=${lastSeq}`, {headers: auth()});
      if (r.status === 401) { expired(); return; }
      if (r.ok) { const b = await r.json(); for (const m of b.messages) add(m.sender, m.text, m.buttons, m.seq); }
    } catch (e) { /* offline: next tick */ }
  }
  async function send(text, shown, silent) {
    text = (text || "").trim(); if (!text) return;
    if (!silent) add("user", shown || text);
    typing(true);
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify({text})); return; }
    try {
      const r = await fetch(`/v1/chat/${cid}/messages`, {method: "POST", headers: {"Content-Type": "application/json", ...auth()}, body: JSON.stringify({text})});
      if (r.status === 401) { typing(false); expired(); return; }
      showTurn(await r.json());
    } catch (e) { typing(false); status("网络不太稳定，消息未发送，请稍后重试。"); }
  }
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    // Browsers cannot set headers on a WebSocket: the token travels as the subprotocol pair.
    ws = new WebSocket(`${proto}://${location.host}/v1/chat/${cid}/ws`, ["bearer", session.session_token]);
    ws.onopen = () => { retry = 0; conn.textContent = "在线"; clearInterval(pollTimer); poll(); };
    ws.onmessage = (ev) => {
      const body = JSON.parse(ev.data);
      if (body.type === "message") { add(body.sender, body.text, null, body.seq); return; }
      if (body.type === "mode") { conn.textContent = body.mode === "human" ? "人工客服" : "在线"; return; }
      showTurn(body);
    };
    ws.onclose = (ev) => {
      ws = null;
      if (ev.code === 4401) { expired(); return; }
      conn.textContent = "重新连接中…";
      clearInterval(pollTimer); pollTimer = setInterval(poll, 3000);   // keep receiving while reconnecting
      setTimeout(connect, Math.min(10000, 500 * 2 ** retry++));
    };
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); const t = input.value; input.value = ""; send(t); });
  let ended = false;
  function finish(message) {   // the session is over: say so once; a refresh starts a fresh one
    if (ended) return; ended = true;
    sessionStorage.removeItem(key); sessionStorage.removeItem(key + ".greeted"); clearInterval(pollTimer);
    sendBtn.disabled = true; input.disabled = true; endBtn.hidden = true;
    if (ws) { const s = ws; ws = null; s.onclose = null; s.close(); }
    status(message);
  }
  function expired() { finish("会话已过期，请刷新页面重新开始。"); }
  const endBtn = document.getElementById("end");
  endBtn.onclick = async () => {   // 结束对话: the token stops working on the server, not only in this tab
    if (!session || !confirm("确定结束本次对话吗？结束后本页面将无法再查看或继续这段对话。")) return;
    try { await fetch("/v1/chat/sessions/logout", {method: "POST", headers: auth()}); } catch (e) { /* offline: forgotten here anyway */ }
    finish("对话已结束，感谢您的咨询。如需继续，请刷新页面开始新的对话。");
  };
  async function openSession(body) {
    const r = await fetch("/v1/chat/sessions", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    if (!r.ok) return false;
    session = await r.json(); cid = session.conversation_id;
    sessionStorage.setItem(key, JSON.stringify(session));
    return true;
  }
  async function start() {
    const link = params.get("t");
    history.replaceState(null, "", location.pathname);   // the token leaves the address bar
    try {
      if (link) {   // opened from our SMS: a fresh conversation tied to the account, greeted in context
        if (await openSession({link_token: link})) { sessionStorage.setItem(key + ".greeted", cid); await poll(); }
        else { status("链接无效或已过期，您仍可以在这里咨询。"); session = null; }
      }
      if (!session && !(await openSession({}))) { status("网络不太稳定，请稍后刷新重试。"); return; }
    } catch (e) { status("网络不太稳定，请稍后刷新重试。"); return; }
    connect();
    endBtn.hidden = false;
    if (sessionStorage.getItem(key + ".greeted") !== cid) { sessionStorage.setItem(key + ".greeted", cid); setTimeout(() => send("你好", null, true), 300); }
    else if (!link) poll();
  }
  start();
})();
