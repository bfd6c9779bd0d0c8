(() => {
  const $ = (id) => document.getElementById(id);
  const pct = (v) => v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%";
  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  $("token").value = sessionStorage.getItem("admin.token") || "";
  // Blank dates: the server picks the last 30 days by its own clock and time zone (the browser's may differ).
  function bars(title, rows, warn) {
    return `<div class="card"><h2>${esc(title)}</h2>` + (rows.length ? rows.map(([label, v]) =>
      `<div class="bar"><span>${esc(label)}</span><div class="track"><div class="fill${warn ? " warn" : ""}" data-width="${Math.round((v || 0) * 100)}"></div></div><span>${pct(v)}</span></div>`).join("")
      : "<div>暂无数据</div>") + "</div>";
  }
  async function load() {
    sessionStorage.setItem("admin.token", $("token").value);
    const range = new URLSearchParams();
    if ($("from").value) range.set("from", $("from").value);
    if ($("to").value) range.set("to", $("to").value);
    const r = await fetch(`/v1/kpis?${range}`, {headers: {Authorization: "Bearer " + $("token").value}});
    const k = await r.json();
    if (!r.ok) { $("error").textContent = k.error ? k.error.message : r.statusText; return; }
    $("from").value = k.from; $("to").value = k.to;
    $("error").textContent = "";
    const tiles = [["触达率", pct(k.contact_rate)], ["本人联系率 RPC", pct(k.rpc_rate)], ["承诺率 PTP", pct(k.ptp_rate)], ["承诺兑现率", pct(k.promise_kept_rate)],
      ["方案接受率", pct(k.plan_uptake)], ["回收率", pct(k.recovery_rate)], ["机器人独立解决", pct(k.containment)], ["户均成本", k.cost_per_account ? k.cost_per_account + "元" : "—"],
      ["转人工率", pct(k.handoff_rate)], ["投诉率", pct(k.complaint_rate)], ["退订率", pct(k.opt_out_rate)], ["目标账户", k.accounts_targeted]];
    let html = `<div class="card wide"><h2>${esc(k.from)} 至 ${esc(k.to)}（不含）</h2><div class="tiles">` +
      tiles.map(([n, v]) => `<div class="tile"><small>${esc(n)}</small><b>${esc(v)}</b></div>`).join("") + "</div></div>";
    const h = k.handoffs || {};
    const minutes = (v) => v === null || v === undefined ? "—" : v + "分钟";
    const people = [["转人工请求", h.requested ?? 0], ["人工接手", h.claimed ?? 0], ["接手用时（中位）", minutes(h.minutes_to_claim_median)],
      ["接手用时（最长）", minutes(h.minutes_to_claim_max)], ["无人值守时转人工", h.unstaffed ?? 0], ["放弃等待", h.abandoned_waits ?? 0],
      ["主动取消", h.withdrawn ?? 0], ["等待超时", h.timed_out ?? 0], ["预约回电", h.callbacks ?? 0], ["回电兑现率", pct(h.callback_kept_rate)]];
    html += `<div class="card wide"><h2>人工服务</h2><div class="tiles">` +
      people.map(([n, v]) => `<div class="tile"><small>${esc(n)}</small><b>${esc(v)}</b></div>`).join("") + "</div></div>";
    const buckets = Object.entries(k.by_bucket);
    html += bars("各阶段触达率", buckets.map(([b, v]) => [b, v.contact_rate]));
    html += bars("各阶段本人联系率 (RPC)", buckets.map(([b, v]) => [b, v.rpc_rate]));
    html += bars("迁徙率（恶化到更差阶段）", Object.entries(k.roll_rate), true);
    html += bars("各渠道转人工率", Object.entries(k.by_channel).map(([c, v]) => [c, v.handoff_rate]), true);
    html += bars("各活动承诺率 (PTP)", Object.entries(k.by_campaign).map(([c, v]) => [c, v.ptp_rate]));
    $("board").innerHTML = html;
    // The CSP allows no inline styles: widths are set through the DOM, which it permits.
    for (const bar of $("board").querySelectorAll(".fill[data-width]")) bar.style.width = bar.dataset.width + "%";
  }
  $("load").onclick = load;
  if ($("token").value) load();
})();
