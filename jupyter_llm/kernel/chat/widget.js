// The chat's view (anywidget ESM, shipped in the wheel; no imports, nothing from a CDN).
//
// The kernel sends `transcript` (every block, redrawn only when its version changes) and
// `live` (the one answer that streams). Answers arrive as HTML rendered by markdown-it-py
// with raw HTML off (kernel/chat/markdown.py); everything else is set as text.
// Keys typed here never reach JupyterLab's shortcuts; Enter sends, Shift+Enter breaks.

function h(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function keepKeys(node) {
  for (const type of ["keydown", "keypress", "keyup"]) {
    node.addEventListener(type, (event) => event.stopPropagation());
  }
}

function pageConfig() {
  const node = document.getElementById("jupyter-config-data");
  try {
    return node ? JSON.parse(node.textContent) : {};
  } catch {
    return {};
  }
}

// Stop goes straight to the server as well when the kernel's jobs run on the server that
// serves this page: a click waits for an idle kernel, a DELETE does not.
function cancelDirectly(model) {
  const job = model.get("job_id");
  const server = model.get("server_url");
  const base = pageConfig().baseUrl;
  if (!job || !server || !base) return;
  const here = new URL(base, window.location.href).href;
  if (here !== server) return;
  const xsrf = (document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/) || [])[1];
  fetch(`${here}llm/api/jobs/${encodeURIComponent(job)}`, {
    method: "DELETE",
    credentials: "same-origin",
    headers: xsrf ? { "X-XSRFToken": decodeURIComponent(xsrf) } : {},
  }).catch(() => {});
}

function render({ model, el }) {
  const root = h("div", { class: "jllm-chat" });
  const select = h("select", { class: "jllm-model", title: "model" });
  const temperature = h("input", {
    class: "jllm-temperature", type: "number", min: "0", max: "2", step: "0.1",
    placeholder: "default", title: "temperature (0 is greedy; empty: the model's default)",
  });
  const maxTokens = h("input", {
    class: "jllm-max-tokens", type: "number", min: "1", step: "1",
    placeholder: "default", title: "max tokens per answer (empty: the model's default)",
  });
  const interpolate = h("input", { class: "jllm-interpolate", type: "checkbox" });
  const newChat = h("button", { class: "jllm-new", text: "New chat" });
  const system = h("textarea", {
    class: "jllm-system", rows: "2", placeholder: "System prompt (optional)",
  });
  const transcript = h("div", { class: "jllm-transcript", role: "log" });
  const input = h("textarea", {
    class: "jllm-input", rows: "2",
    placeholder: "Message (Enter sends, Shift+Enter for a new line)",
  });
  const send = h("button", { class: "jllm-send", text: "Send" });
  const stop = h("button", { class: "jllm-stop", text: "Stop" });
  const regenerate = h("button", { class: "jllm-regenerate", text: "Regenerate" });
  const cancelEdit = h("button", { class: "jllm-cancel-edit", text: "Cancel edit" });
  root.append(
    h("div", { class: "jllm-bar" }, [
      h("label", {}, ["Model ", select]),
      h("label", {}, ["Temperature ", temperature]),
      h("label", {}, ["Max tokens ", maxTokens]),
      h("label", { title: "fill {name} from the kernel's variables" }, [interpolate, " {var}"]),
      newChat,
    ]),
    system,
    transcript,
    h("div", { class: "jllm-compose" }, [
      input,
      h("div", { class: "jllm-buttons" }, [send, stop, regenerate, cancelEdit]),
    ]),
  );
  for (const node of [select, temperature, maxTokens, system, input]) keepKeys(node);
  el.append(root);

  let editing = false;
  const nodes = new Map(); // block id -> {node, version}

  function act(action, extra = {}) {
    model.send({ action, ...extra });
  }

  function submit() {
    const text = input.value;
    if (!text.trim() || model.get("busy")) return;
    act(editing ? "edit" : "send", { text });
    input.value = "";
    setEditing(false);
  }

  function setEditing(on) {
    editing = on;
    root.classList.toggle("jllm-editing", on);
    send.textContent = on ? "Resend" : "Send";
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    } else if (event.key === "Escape" && editing) {
      setEditing(false);
      input.value = "";
    }
  });
  send.addEventListener("click", submit);
  stop.addEventListener("click", () => {
    cancelDirectly(model);
    act("stop");
  });
  regenerate.addEventListener("click", () => act("regenerate"));
  newChat.addEventListener("click", () => act("new"));
  cancelEdit.addEventListener("click", () => {
    setEditing(false);
    input.value = "";
  });
  select.addEventListener("focus", () => act("refresh"));

  function setting(name, value) {
    model.set(name, value);
    model.save_changes();
  }
  select.addEventListener("change", () => setting("model", select.value));
  system.addEventListener("change", () => setting("system", system.value));
  interpolate.addEventListener("change", () => setting("interpolate", interpolate.checked));
  temperature.addEventListener("change", () => {
    const value = temperature.value === "" ? null : Number(temperature.value);
    setting("temperature", value);
  });
  maxTokens.addEventListener("change", () => {
    const value = maxTokens.value === "" ? null : Math.round(Number(maxTokens.value));
    setting("max_tokens", value);
  });

  function block(item, last) {
    const node = h("div", { class: `jllm-msg jllm-${item.role}`, "data-id": String(item.id) });
    if (item.role === "assistant") {
      const body = h("div", { class: "jllm-body" });
      body.innerHTML = item.html; // markdown-it-py output, raw HTML off: escaped text only
      node.append(body, h("div", { class: "jllm-meta", text: item.meta || "" }));
      if (item.status) node.dataset.status = item.status;
    } else if (item.role === "user") {
      node.append(h("div", { class: "jllm-body", text: item.text }));
      if (last) {
        node.append(h("button", {
          class: "jllm-edit", text: "Edit", title: "edit and resend this message",
          onclick: () => {
            if (model.get("busy")) return;
            input.value = item.text;
            setEditing(true);
            input.focus();
          },
        }));
      }
    } else {
      node.append(h("div", { class: "jllm-body", text: item.text }));
    }
    return node;
  }

  function drawTranscript() {
    const items = model.get("transcript") || [];
    const lastUser = [...items].reverse().find((item) => item.role === "user");
    const seen = new Set();
    let previous = null;
    for (const item of items) {
      seen.add(item.id);
      const isLast = lastUser !== undefined && item.id === lastUser.id;
      const key = `${item.version}:${isLast}`;
      let entry = nodes.get(item.id);
      if (!entry || entry.key !== key) {
        const node = block(item, isLast);
        if (entry) entry.node.replaceWith(node);
        entry = { node, key, final: !["", "queued", "running"].includes(item.status || "") };
        nodes.set(item.id, entry);
      }
      const expected = previous ? previous.nextSibling : transcript.firstChild;
      if (expected !== entry.node) transcript.insertBefore(entry.node, expected);
      previous = entry.node;
    }
    for (const [id, entry] of nodes) {
      if (!seen.has(id)) {
        entry.node.remove();
        nodes.delete(id);
      }
    }
    drawLive();
  }

  function drawLive() {
    const live = model.get("live") || {};
    if (live.id === undefined) return;
    const entry = nodes.get(live.id);
    if (!entry || entry.final) return; // the answer has ended: its block is the truth
    const stick = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    entry.node.querySelector(".jllm-body").innerHTML = live.html; // as in block()
    entry.node.querySelector(".jllm-meta").textContent = live.meta || "";
    entry.node.dataset.status = live.status || "";
    if (stick) transcript.scrollTop = transcript.scrollHeight;
  }

  function drawModels() {
    const models = model.get("models") || [];
    const chosen = model.get("model");
    select.replaceChildren(
      ...models.map((m) => {
        const option = h("option", { value: m.name, text: m.label });
        if (m.state === "error") option.disabled = true;
        return option;
      }),
    );
    if (chosen && !models.some((m) => m.name === chosen)) {
      select.append(h("option", { value: chosen, text: `${chosen} (unknown)` }));
    }
    select.value = chosen;
  }

  function drawSettings() {
    if (document.activeElement !== system) system.value = model.get("system") || "";
    const t = model.get("temperature");
    if (document.activeElement !== temperature) temperature.value = t === null ? "" : String(t);
    const n = model.get("max_tokens");
    if (document.activeElement !== maxTokens) maxTokens.value = n === null ? "" : String(n);
    interpolate.checked = Boolean(model.get("interpolate"));
    select.value = model.get("model");
  }

  function drawBusy() {
    const busy = Boolean(model.get("busy"));
    root.classList.toggle("jllm-busy", busy);
    send.disabled = busy;
    regenerate.disabled = busy;
    stop.disabled = !busy;
  }

  const handlers = [
    ["change:transcript", () => {
      const stick = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
      drawTranscript();
      if (stick) transcript.scrollTop = transcript.scrollHeight;
    }],
    ["change:live", drawLive],
    ["change:models", drawModels],
    ["change:model change:system change:temperature change:max_tokens change:interpolate",
      drawSettings],
    ["change:busy", drawBusy],
  ];
  for (const [event, handler] of handlers) model.on(event, handler);
  drawModels();
  drawSettings();
  drawBusy();
  drawTranscript();
  transcript.scrollTop = transcript.scrollHeight;
  return () => {
    for (const [event, handler] of handlers) model.off(event, handler);
  };
}

export default { render };
