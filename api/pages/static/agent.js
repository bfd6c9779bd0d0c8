(() => {
  let token = sessionStorage.getItem("agent.token"), current = null, ws = null;
  const $ = (id) => document.getElementById(id);
  const api = async (path, opts = {}) => {
    const r = await fetch(path, {...opts, headers: {...(opts.headers || {}), Authorization: "Bearer " + token}});
    if (r.status === 401) { sessionStorage.removeItem("agent.token"); location.reload(); }
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
    return body;
  };
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  const reasons = {requested: "主动要求", dispute: "争议/盗刷", complaint: "投诉", hardship: "困难", plan_approval: "方案审批",
                   verification_failed: "验证失败", service_unavailable: "系统故障", abuse: "辱骂", stop_contact: "停止联系"};
  $("login").onsubmit = async (e) => {
    e.preventDefault();
    const form = new URLSearchParams({username: $("username").value, password: $("password").value});
    const r = await fetch("/v1/agent/login", {method: "POST", body: form});
    const body = await r.json();
    if (!r.ok) { $("loginError").textContent = body.error ? body.error.message : "登录失败"; return; }
    token = body.access_token; sessionStorage.setItem("agent.token", token); start();
  };
  let queueLoads = 0;
  async function loadQueue() {
    const mine = ++queueLoads;
    const items = await api("/v1/agent/queue");
    if (mine !== queueLoads) return;   // a later load is on its way: a slow, older answer must not win
    $("queue").innerHTML = items.length ? "" : '<div class="item">暂无等待中的会话</div>';
    for (const it of items) {
      const div = document.createElement("div");
      div.className = "item" + (it.conversation_id === current ? " active" : "");
      div.dataset.id = it.conversation_id;
      const acct = it.account ? `${it.account.bucket} · 逾期${it.account.overdue_days}天 · 应还${it.account.amount_due}` : "未验证";
      div.innerHTML = `<span class="reason">${esc(reasons[it.reason] || it.reason)}</span> ${esc(it.conversation_id)}
        <div class="meta">${esc(it.channel)} · 等待${Math.round(it.waiting_seconds / 60)}分钟 · ${esc(it.status === "claimed" ? "已接入:" + it.agent : "待接入")}</div>
        <div class="meta">${esc(acct)}</div><div class="meta">${esc((it.last_messages.at(-1) || {}).text || "")}</div>
        ${it.callback_at ? `<div class="meta">预约回电：${esc(it.callback_at.slice(5, 16).replace("T", " "))}</div>` : ""}
        ${it.status === "waiting" && !it.holder_waiting ? '<div class="meta">持卡人由机器人服务中</div>' : ""}`;
      div.onclick = () => open(it.conversation_id);
      $("queue").appendChild(div);
    }
  }
  async function open(id) {
    current = id;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({follow: id}));
    let d;
    try { d = await api(`/v1/agent/conversations/${id}`); }
    catch (e) {   // an agent reads a conversation once it has claimed it
      $("transcript").innerHTML = '<div class="hint">接入后可查看会话内容。</div>'; $("side").innerHTML = ""; loadQueue(); return;
    }
    $("transcript").innerHTML = "";
    for (const m of d.transcript.messages) addMessage(m.sender, m.text, m.at, m.intent);
    renderSide(d);
    loadQueue();
  }
  function addMessage(sender, text, at, intent) {
    const div = document.createElement("div"); div.className = "m " + sender;
    const label = {user: "持卡人", bot: "机器人", agent: "坐席"}[sender] || sender;
    div.innerHTML = `<small>${label}${at ? " · " + esc(at.slice(11, 19)) : ""}${intent ? " · " + esc(intent) : ""}</small>${esc(text)}`;
    $("transcript").appendChild(div); $("transcript").scrollTop = 1e9;
  }
  // What the holder asked about contact, exactly: per channel, its time windows and forbidden places.
  function contactPreferences(p) {
    const names = {calls: "电话", sms: "短信", wechat: "微信"};
    const values = {allowed: "可以联系", opted_out: "已退订", restricted: "有限制"};
    const days = {all: "每天", weekdays: "工作日", weekends: "周末"};
    const places = {workplace: "单位", home: "家里座机", mobile: "手机"};
    const rows = Object.keys(names).filter((c) => p[c]).map((c) => {
      const windows = (p[`${c}_windows`] || []).map((w) => `${days[w.days] || w.days} ${w.from}-${w.to}`);
      const banned = Object.keys(p[`${c}_places`] || {}).map((k) => `不联系${places[k] || k}`);
      const detail = [windows.length ? "只在 " + windows.join("、") : "", ...banned].filter(Boolean).join("；");
      return `<tr><td>${names[c]}</td><td>${esc(values[p[c]] || p[c])}${detail ? "：" + esc(detail) : ""}</td></tr>`;
    });
    if (p.third_party === "forbidden") rows.push("<tr><td>第三方</td><td>不联系家人、同事</td></tr>");
    return rows.length ? `<table>${rows.join("")}</table>` : "<div>无</div>";
  }
  const summaries = {};   // what the claim answered: asked, offered, refused, the holder's situation
  function renderSummary(s) {
    if (!s) return "";
    const list = (xs) => xs.length ? xs.map(esc).join("、") : "无";
    return `<h3>接入摘要</h3><table><tr><td>问过</td><td>${list(s.asked)}</td></tr><tr><td>已提供</td><td>${list(s.offered)}</td></tr>
      <tr><td>拒绝过</td><td>${list(s.refused)}</td></tr><tr><td>自述情况</td><td>${list(s.situation)}</td></tr>
      ${s.callback_at ? `<tr><td>预约回电</td><td>${esc(s.callback_at.slice(0, 16).replace("T", " "))}</td></tr>` : ""}</table>`;
  }
  function renderSide(d) {
    const a = d.account;
    let html = renderSummary(summaries[current]) + "<h3>账户</h3>";
    if (!a) html += "<div>持卡人尚未通过身份验证，不显示账户信息。</div>";
    else {
      const b = a.breakdown;
      html += `<table><tr><td>账户</td><td>${esc(a.account_id)}</td></tr><tr><td>阶段</td><td>${esc(a.bucket)}（逾期${a.overdue_days}天）</td></tr>
        <tr><td>恢复正常需还</td><td>${esc(a.amount_due)}</td></tr><tr><td>· 本金</td><td>${esc(b.principal)}</td></tr>
        <tr><td>· 利息</td><td>${esc(b.interest)}</td></tr><tr><td>· 违约金</td><td>${esc(b.late_fee)}</td></tr>
        <tr><td>全部结清</td><td>${esc(a.outstanding)}</td></tr><tr><td>标记</td><td>${esc(a.flags.join("、") || "无")}</td></tr></table>`;
      html += "<h3>可提供的分期</h3>" + (d.offers.map((o) => `<div>${o.periods}期：每期${esc(o.per_period)}，手续费${esc(o.total_fee)}，年化${(o.apr * 100).toFixed(2)}%</div>`).join("") || "<div>无</div>");
      html += "<h3>还款方案</h3>" + (a.plans.map((p) => `<div>${esc(p.type)} ${p.periods}期 · ${esc(p.status)}
        ${p.status === "pending_approval" ? `<input data-reason="${esc(p.plan_id)}" placeholder="批准理由（必填）" maxlength="500"><button data-plan="${esc(p.plan_id)}">批准</button>` : ""}</div>`).join("") || "<div>无</div>");
      html += "<h3>还款承诺</h3>" + (a.promises.map((p) => `<div>${esc(p.due_date)} 还 ${esc(p.amount)}（${esc(p.status)}）</div>`).join("") || "<div>无</div>");
      html += "<h3>联系偏好</h3>" + contactPreferences(a.contact_preferences || {});
    }
    html += "<h3>内部备注</h3>" + d.notes.map((n) => `<div>${esc(n.agent)}：${esc(n.text)}</div>`).join("") +
      '<textarea id="note" rows="2"></textarea><button id="addNote" class="secondary">添加备注</button>';
    $("side").innerHTML = html;
    for (const btn of $("side").querySelectorAll("button[data-plan]"))
      btn.onclick = async () => {   // who approved and why is audited; beyond an agent's limit a supervisor approves
        const field = $("side").querySelector(`input[data-reason="${btn.dataset.plan}"]`);
        const reason = field ? field.value.trim() : "";
        if (reason.length < 2) { alert("请填写批准理由"); return; }
        try {
          await api(`/v1/agent/plans/${btn.dataset.plan}/approve`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({reason})});
        } catch (e) { alert(e.message); }
        open(current);
      };
    $("addNote").onclick = async () => {
      const text = $("note").value.trim(); if (!text) return;
      await api(`/v1/agent/conversations/${current}/notes`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text})});
      open(current);
    };
  }
  const act = (path) => async () => {
    if (!current) return;
    try {
      const body = await api(`/v1/agent/conversations/${current}/${path}`, {method: "POST"});
      if (path === "claim" && body) summaries[current] = body.summary;
    } catch (e) { alert(e.message); }
    open(current);
  };
  let available = false;
  async function setPresence(status) {
    await api("/v1/agent/presence", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({status})});
    available = status === "available";
    $("presence").textContent = available ? "在线接待中（点此暂离）" : "暂离（点此上线）";
  }
  $("presence").onclick = () => setPresence(available ? "away" : "available");
  $("claim").onclick = act("claim"); $("release").onclick = act("release"); $("close").onclick = act("close");
  $("send").onclick = async () => {
    const text = $("reply").value.trim(); if (!current || !text) return;
    try {
      await api(`/v1/agent/conversations/${current}/messages`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({text})});
      $("reply").value = ""; open(current);
    } catch (e) { alert(e.message); }
  };
  function connect() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    ws = new WebSocket(`${proto}://${location.host}/v1/agent/ws`, ["bearer", token]);   // never in the URL
    ws.onopen = () => {   // a connected console makes its agent available (the server records it)
      if (current) ws.send(JSON.stringify({follow: current}));
      available = true; $("presence").textContent = "在线接待中（点此暂离）";
    };
    ws.onmessage = (ev) => { const e = JSON.parse(ev.data); if (e.type === "queue" || e.type === "presence") loadQueue(); else if (e.type !== "error" && current) open(current); };
    ws.onclose = (ev) => {
      if (ev.code === 4401) { sessionStorage.removeItem("agent.token"); location.reload(); return; }   // logged out or expired
      setTimeout(connect, 2000);
    };
  }
  $("logout").onclick = async () => {   // the token stops working on the server too, not only here
    try { await fetch("/v1/agent/logout", {method: "POST", headers: {Authorization: "Bearer " + token}}); } catch (e) { /* offline */ }
    sessionStorage.removeItem("agent.token"); location.reload();
  };
  function start() {
    $("logout").hidden = false; $("presence").hidden = false;
    $("login").style.display = "none"; $("app").style.display = "grid";
    loadQueue(); connect(); setInterval(loadQueue, 15000);
  }
  if (token) start();
})();
