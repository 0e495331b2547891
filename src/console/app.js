// waconnect console. Plain JavaScript, no dependencies, served by the simulator.
//
// State comes only from the simulator's event stream (GET /sim/events: a snapshot, then
// one event per change) and actions go only through the documented control API. Nothing
// is polled. Everything shown is text set with textContent; URLs from messages are used
// only when they are http(s), and loaded inline only from this origin or loopback.
'use strict';

(() => {
  const EVENT_PREFIX = 'application/vnd.amazonaws.connect.event.';
  // WhatsApp drops a typing indicator after 25 s (or when the message arrives).
  const WA_TYPING_MS = 25000;
  // Connect shows an agent's or customer's typing for a few seconds.
  const CONNECT_TYPING_MS = 10000;
  // The agent's app sends at most one typing event per this interval.
  const TYPING_EVERY_MS = 5000;
  const CALLS_KEPT = 200;
  const CALLS_SHOWN = 60;
  const DEFAULT_CUSTOMER = { wa_id: '5491155550123', profile_name: 'Lucía' };

  const $ = (id) => document.getElementById(id);

  const model = {
    business: null,
    customers: new Map(), // wa_id -> customer
    chats: new Map(), // initial_contact_id -> { summary, items: [] }
    calls: [],
    figures: null,
    selected: null,
    freshCalls: 0,
  };

  // ---------------------------------------------------------------- helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function timeOf(at) {
    if (!at) return '';
    const date = new Date(at);
    if (Number.isNaN(date.getTime())) return '';
    return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function clockOf(at) {
    const date = new Date(at);
    if (Number.isNaN(date.getTime())) return '';
    const pad = (n, w = 2) => String(n).padStart(w, '0');
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
  }

  function sizeOf(bytes) {
    if (typeof bytes !== 'number') return '';
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function num(value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  function short(id) {
    return typeof id === 'string' ? id.slice(0, 8) : '';
  }

  function digits(waId) {
    return String(waId || '').replace(/^\+/, '');
  }

  // A URL safe to link to (http or https only), or null.
  function safeHref(raw) {
    if (typeof raw !== 'string' || raw === '') return null;
    try {
      const url = new URL(raw, location.href);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  // A URL the page may load inline (img/audio): this origin or loopback, as the CSP allows.
  function inlineSrc(raw) {
    const href = safeHref(raw);
    if (!href) return null;
    const url = new URL(href);
    if (url.origin === location.origin) return href;
    return url.protocol === 'http:' && (url.hostname === '127.0.0.1' || url.hostname === 'localhost') ? href : null;
  }

  function preview(value) {
    try {
      return JSON.stringify(value, null, 2);
    } catch {
      return String(value);
    }
  }

  // Something the console does not know how to draw, readable anyway.
  function generic(label, value) {
    return el('details', {}, el('summary', { text: label }), el('pre', { text: preview(value) }));
  }

  let noticeTimer = 0;
  function notice(message) {
    const box = $('notice');
    box.replaceChildren(el('span', { text: message }), el('button', { type: 'button', text: 'Dismiss', 'data-dismiss': '' }));
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
  }

  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (!response.ok) {
      const reason = json && typeof json.error === 'string' ? json.error : `${response.status} ${response.statusText}`;
      throw new Error(reason);
    }
    return json;
  }

  function fileToBase64(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(',', 2)[1] || '');
      reader.onerror = () => reject(reader.error || new Error('could not read the file'));
      reader.readAsDataURL(blob);
    });
  }

  // ---------------------------------------------------------------- the model

  function customer(waId) {
    const id = digits(waId);
    let c = model.customers.get(id);
    if (!c) {
      c = {
        wa_id: id,
        profile_name: null,
        timeline: [], // { key, seq, kind: 'sent'|'inbox', data, at }
        keys: new Set(),
        reactions: new Map(), // wamid -> emoji the business reacted with
        read: new Set(), // wamids the business marked read
        typingUntil: 0,
      };
      model.customers.set(id, c);
      scheduleRender('customers');
    }
    return c;
  }

  function addSent(sent, seq) {
    const c = customer(sent.wa_id);
    if (sent.profile_name) c.profile_name = sent.profile_name;
    const key = `sent:${sent.wamid}`;
    const known = c.timeline.find((t) => t.key === key);
    if (known) {
      known.data = sent;
    } else {
      c.timeline.push({ key, seq, kind: 'sent', data: sent, at: sent.at });
      c.keys.add(key);
    }
    if (c.wa_id === model.selected) scheduleRender('phone');
  }

  function addInbox(waId, entry, seq, at) {
    const c = customer(waId);
    const key = `inbox:${entry.id}`;
    if (c.keys.has(key)) return;
    c.keys.add(key);
    const body = entry.body || {};
    if (entry.type === 'read' || body.status === 'read') {
      if (typeof body.message_id === 'string') c.read.add(body.message_id);
      if (body.typing_indicator) {
        c.typingUntil = Date.now() + WA_TYPING_MS;
        setTimeout(() => scheduleRender('phone'), WA_TYPING_MS + 50);
      }
    } else if (entry.type === 'reaction' && body.reaction && typeof body.reaction.message_id === 'string') {
      const target = body.reaction.message_id;
      if (body.reaction.emoji) c.reactions.set(target, body.reaction.emoji);
      else c.reactions.delete(target);
      // A reaction on something the phone does not show is still shown, as a note.
      const shown = c.timeline.some((t) => t.kind === 'sent' && t.data.wamid === target);
      if (!shown) c.timeline.push({ key, seq, kind: 'inbox', data: entry, at });
    } else {
      c.typingUntil = 0;
      c.timeline.push({ key, seq, kind: 'inbox', data: entry, at });
    }
    if (c.wa_id === model.selected) scheduleRender('phone');
  }

  function chatOf(ids) {
    const key = ids.initial_contact_id || ids.contact_id;
    let chat = model.chats.get(key);
    if (!chat) {
      chat = {
        summary: {
          contact_id: ids.contact_id || key,
          initial_contact_id: key,
          customer_id: ids.customer_id || null,
          state: 'active',
        },
        items: [],
        itemIds: new Set(),
        typing: new Map(), // role -> until
      };
      model.chats.set(key, chat);
    }
    return chat;
  }

  function addItem(ids, item) {
    const chat = chatOf(ids);
    if (ids.contact_id) chat.summary.contact_id = ids.contact_id;
    if (ids.customer_id && !chat.summary.customer_id) chat.summary.customer_id = ids.customer_id;
    if (chat.itemIds.has(item.id)) return;
    chat.itemIds.add(item.id);
    chat.items.push(item);
    if (item.type === 'EVENT' && item.content_type === `${EVENT_PREFIX}typing`) {
      chat.typing.set(item.participant_role, Date.now() + CONNECT_TYPING_MS);
      setTimeout(() => scheduleRender('agent'), CONNECT_TYPING_MS + 50);
    } else if (item.type !== 'EVENT') {
      // A message ends its author's typing.
      chat.typing.delete(item.participant_role);
    }
    if (item.content_type === `${EVENT_PREFIX}chat.ended`) chat.summary.state = 'ended';
    if (chat.summary.customer_id) customer(chat.summary.customer_id);
    if (isSelectedChat(chat)) scheduleRender('agent');
  }

  function setChat(summary) {
    const chat = chatOf(summary);
    chat.summary = { ...chat.summary, ...summary };
    if (summary.customer_id) customer(summary.customer_id);
    if (isSelectedChat(chat)) scheduleRender('agent');
  }

  function isSelectedChat(chat) {
    return digits(chat.summary.customer_id) === model.selected;
  }

  function chatsOfSelected() {
    return [...model.chats.values()].filter(isSelectedChat);
  }

  function openChat() {
    const chats = chatsOfSelected();
    for (let i = chats.length - 1; i >= 0; i -= 1) {
      if (chats[i].summary.state === 'active') return chats[i];
    }
    return null;
  }

  function applySnapshot(snap) {
    model.business = snap.business || null;
    model.customers.clear();
    model.chats.clear();
    for (const c of snap.customers || []) {
      const phone = customer(c.wa_id);
      phone.profile_name = c.profile_name || null;
      const entries = [
        ...(c.sent || []).map((s) => ({ seq: s.seq || 0, sent: s })),
        ...(c.inbox || []).map((i) => ({ seq: i.seq || 0, inbox: i })),
      ].sort((a, b) => a.seq - b.seq);
      for (const e of entries) {
        if (e.sent) addSent(e.sent, e.seq);
        else addInbox(c.wa_id, { id: e.inbox.id, type: e.inbox.type, body: e.inbox.body }, e.seq, e.inbox.at);
      }
      // Typing indicators in a snapshot are history, not news.
      phone.typingUntil = 0;
    }
    for (const chat of snap.chats || []) {
      const { items, ...summary } = chat;
      setChat(summary);
      for (const item of items || []) addItem(summary, item);
      chatOf(summary).typing.clear();
    }
    model.calls = (snap.calls || []).slice(-CALLS_KEPT);
    model.freshCalls = 0;
    model.figures = snap.figures || null;
    if (!model.selected) {
      const first = model.customers.keys().next();
      selectCustomer(first.done ? DEFAULT_CUSTOMER.wa_id : first.value, first.done ? DEFAULT_CUSTOMER.profile_name : null);
    }
    scheduleRender('all');
  }

  function selectCustomer(waId, profileName) {
    const c = customer(waId);
    if (profileName) c.profile_name = profileName;
    model.selected = c.wa_id;
    scheduleRender('all');
  }

  // ---------------------------------------------------------------- rendering

  const dirty = new Set();
  let frame = 0;
  function scheduleRender(part) {
    dirty.add(part);
    if (!frame) frame = requestAnimationFrame(render);
  }

  function render() {
    frame = 0;
    const all = dirty.has('all');
    if (all || dirty.has('customers')) renderCustomers();
    if (all || dirty.has('phone')) renderPhone();
    if (all || dirty.has('agent')) renderAgent();
    if (all || dirty.has('calls')) renderCalls();
    if (all || dirty.has('figures')) renderFigures();
    dirty.clear();
  }

  // Keeps `list` in step with `rows` ({ key, sig, build }): new rows are appended (what a
  // screen reader announces in a log), changed rows rebuilt in place, gone rows removed.
  function reconcile(list, rows) {
    const stickToEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const existing = new Map([...list.children].map((node) => [node.dataset.key, node]));
    let previous = null;
    for (const row of rows) {
      let node = existing.get(row.key);
      if (node && node.dataset.sig !== row.sig) {
        const fresh = row.build();
        node.replaceChildren(...fresh.childNodes);
        node.className = fresh.className;
        node.dataset.sig = row.sig;
      } else if (!node) {
        node = row.build();
        node.dataset.key = row.key;
        node.dataset.sig = row.sig;
      }
      existing.delete(row.key);
      const want = previous ? previous.nextSibling : list.firstChild;
      if (want !== node) list.insertBefore(node, want);
      previous = node;
    }
    for (const gone of existing.values()) gone.remove();
    if (stickToEnd) list.scrollTop = list.scrollHeight;
  }

  function renderCustomers() {
    const select = $('customer-select');
    const options = [...model.customers.values()].map((c) => {
      const label = c.profile_name ? `${c.profile_name} (+${c.wa_id})` : `+${c.wa_id}`;
      return el('option', { value: c.wa_id, text: label, selected: c.wa_id === model.selected });
    });
    select.replaceChildren(...options);
    if (model.selected) select.value = model.selected;
  }

  function renderPhone() {
    const c = model.selected ? customer(model.selected) : null;
    const biz = model.business ? `Business +${model.business.display_phone_number}` : 'Business';
    $('phone-biz').textContent = biz;
    const typing = c && c.typingUntil > Date.now();
    $('phone-status').textContent = typing ? 'typing…' : 'online';
    const log = $('phone-log');
    log.setAttribute('aria-label', c ? `Messages on ${c.profile_name || `+${c.wa_id}`}'s phone` : 'Messages');
    if (!c) {
      reconcile(log, []);
      return;
    }
    const rows = [...c.timeline].sort((a, b) => a.seq - b.seq).map((t) => {
      if (t.kind === 'sent') {
        const wamid = t.data.wamid;
        const sig = [t.data.status, c.read.has(wamid), c.reactions.get(wamid) || ''].join('|');
        return { key: t.key, sig, build: () => sentNode(c, t) };
      }
      const sig = t.data.type === 'reaction' ? c.reactions.get(t.data.body.reaction.message_id) || '' : '';
      return { key: t.key, sig, build: () => inboxNode(c, t) };
    });
    reconcile(log, rows);
  }

  function quoteOf(c, context) {
    if (!context || typeof context.message_id !== 'string' && typeof context.id !== 'string') return null;
    const id = context.message_id || context.id;
    const quoted = c.timeline.find((t) => (t.kind === 'sent' ? t.data.wamid : null) === id);
    const text = quoted ? textOfMeta(quoted.data.message) : 'a message';
    return el('span', { class: 'quote', text: `↪ ${text}` });
  }

  function textOfMeta(message) {
    if (!message || typeof message !== 'object') return '';
    switch (message.type) {
      case 'text': return message.text && message.text.body || '';
      case 'image': return '📷 Photo';
      case 'audio': return message.audio && message.audio.voice ? '🎤 Voice note' : '🎵 Audio';
      case 'video': return '🎬 Video';
      case 'document': return `📄 ${message.document && message.document.filename || 'Document'}`;
      case 'sticker': return 'Sticker';
      default: return message.type || 'message';
    }
  }

  // The body of a Meta media message: inline when it can be, a link otherwise.
  function mediaBody(type, media, src, label) {
    const parts = [];
    const caption = media && typeof media.caption === 'string' ? media.caption : '';
    const inline = inlineSrc(src);
    if ((type === 'image' || type === 'sticker') && inline) {
      parts.push(el('img', { src: inline, alt: caption || label, loading: 'lazy' }));
    } else if (type === 'audio' && inline) {
      parts.push(el('span', { class: 'kind', text: label }), el('audio', { controls: true, preload: 'metadata', src: inline, 'aria-label': label }));
    } else if (type === 'video' && inline) {
      parts.push(el('video', { controls: true, preload: 'metadata', src: inline, 'aria-label': label }));
    } else {
      const href = safeHref(src);
      const name = media && media.filename ? media.filename : label;
      parts.push(href ? el('a', { href, target: '_blank', rel: 'noopener noreferrer', download: media && media.filename ? media.filename : null, text: `📄 ${name}` }) : el('span', { text: `📄 ${name}` }));
    }
    if (caption) parts.push(el('span', { class: 'caption', text: caption }));
    return parts;
  }

  function metaMessageBody(message, src) {
    const type = message.type;
    const payload = message[type];
    switch (type) {
      case 'text':
        return [el('span', { text: payload && payload.body || '' })];
      case 'image':
      case 'sticker':
      case 'audio':
      case 'video':
      case 'document':
        return mediaBody(type, payload, src, textOfMeta(message));
      case 'location':
        return [el('span', { text: `📍 ${payload && (payload.name || payload.address) || ''} ${payload ? `${payload.latitude}, ${payload.longitude}` : ''}`.trim() })];
      case 'interactive': {
        const parts = [];
        const header = payload && payload.header && payload.header.text;
        if (header) parts.push(el('strong', { text: header }));
        const text = payload && payload.body && payload.body.text;
        if (text) parts.push(el('span', { text }));
        // Reply buttons and list rows are handled by the phone (inboxNode: tap to answer).
        const reply = payload && (payload.button_reply || payload.list_reply);
        if (reply) parts.push(el('span', { text: `☑ ${reply.title || reply.id}` }));
        if (!parts.length) parts.push(generic('interactive message', payload));
        return parts;
      }
      case 'template':
        return [el('span', { class: 'kind', text: `Template ${payload && payload.name || ''}` }), generic('template details', payload)];
      default:
        return [generic(`${type || 'unknown'} message`, message)];
    }
  }

  function sentNode(c, t) {
    const sent = t.data;
    const message = sent.message || {};
    const src = sent.media ? sent.media.url : null;
    const bubble = el('div', { class: 'bubble' }, quoteOf(c, message.context), ...metaMessageBody(message, src));
    let ticks;
    if (sent.status === 'failed') ticks = el('span', { class: 'ticks failed', text: '❗ not sent' });
    else if (c.read.has(sent.wamid)) ticks = el('span', { class: 'ticks read', 'aria-label': 'read', title: 'read', text: '✓✓' });
    else ticks = el('span', { class: 'ticks', 'aria-label': 'sent', title: 'sent', text: '✓' });
    bubble.append(el('span', { class: 'meta' }, timeOf(sent.at), ticks));
    const li = el('li', { class: 'out', 'data-wamid': sent.wamid }, bubble);
    const emoji = c.reactions.get(sent.wamid);
    if (emoji) li.append(el('span', { class: 'reactions', 'aria-label': `business reacted ${emoji}`, title: 'reaction from the business', text: emoji }));
    return li;
  }

  function inboxNode(c, t) {
    const entry = t.data;
    const body = entry.body || {};
    if (entry.type === 'reaction') {
      const emoji = body.reaction && body.reaction.emoji;
      return el('li', { class: 'center' }, el('span', { class: 'note', text: emoji ? `Business reacted ${emoji} to a message` : 'Business removed a reaction' }));
    }
    const type = body.type || entry.type;
    const payload = body[type];
    const src = payload && typeof payload === 'object' ? payload.link : null;
    const message = { ...body, type };
    const parts = metaMessageBody(message, src);
    if (type === 'interactive') parts.push(...choicesOf(entry.id, payload));
    if (payload && payload.id && !payload.link) parts.push(el('span', { class: 'kind', text: `media id ${payload.id}` }));
    const bubble = el('div', { class: 'bubble' }, quoteOf(c, body.context), ...parts, el('span', { class: 'meta' }, timeOf(t.at)));
    return el('li', { class: 'in', 'data-id': entry.id }, bubble);
  }

  // The buttons or list rows of a business's interactive message, as buttons the
  // customer taps to answer (a button_reply / list_reply quoting the message).
  function choicesOf(messageId, payload) {
    const action = payload && payload.action || {};
    const choices = [];
    if (Array.isArray(action.buttons)) {
      for (const b of action.buttons) {
        const reply = b && b.reply || {};
        choices.push({ kind: 'button_reply', id: reply.id, title: reply.title, description: null });
      }
    }
    if (Array.isArray(action.sections)) {
      for (const section of action.sections) {
        for (const row of section && Array.isArray(section.rows) ? section.rows : []) {
          choices.push({ kind: 'list_reply', id: row.id, title: row.title, description: row.description || null });
        }
      }
    }
    if (!choices.length) return [];
    const list = el('span', { class: 'choices', role: 'group', 'aria-label': action.button || 'choices' });
    for (const c of choices) {
      if (typeof c.id !== 'string' || typeof c.title !== 'string') continue;
      list.append(el('button', {
        type: 'button',
        class: 'choice',
        'data-kind': c.kind,
        'data-id': c.id,
        'data-title': c.title,
        'data-description': c.description,
        'data-context': messageId,
        title: c.description || c.title,
        text: c.title,
      }));
    }
    return [list];
  }

  const ROLE_NAMES = { CUSTOMER: 'Customer', AGENT: 'Agent', SYSTEM: 'System', CUSTOM_BOT: 'Bot' };

  function renderAgent() {
    const chats = chatsOfSelected();
    const open = openChat();
    const state = $('chat-state');
    const latest = chats[chats.length - 1];
    if (!latest) {
      state.textContent = 'No chat yet: the router opens one when the customer writes.';
    } else {
      const s = latest.summary;
      const how = s.state === 'active' ? 'active' : s.expired ? 'expired' : 'ended';
      state.replaceChildren(
        'Chat ', el('strong', { text: short(s.contact_id) }),
        ` · ${how}`,
        s.contact_id !== s.initial_contact_id ? ` · transferred from ${short(s.initial_contact_id)}` : '',
        chats.length > 1 ? ` · ${chats.length} chats with this customer` : '',
      );
    }
    for (const id of ['agent-text', 'agent-send', 'agent-file-btn', 'agent-end']) $(id).disabled = !open;

    const rows = [];
    for (const chat of chats) {
      const s = chat.summary;
      rows.push({
        key: `chat:${s.initial_contact_id}`,
        sig: `${s.state}|${s.contact_id}`,
        build: () => el('li', { class: 'divider' }, `Chat ${short(s.initial_contact_id)} · ${s.state === 'active' ? 'active' : 'ended'}`),
      });
      const receipts = receiptsOf(chat);
      for (const item of chat.items) {
        if (item.type === 'EVENT' && receiptTarget(item)) continue;
        if (item.type === 'EVENT' && item.content_type === `${EVENT_PREFIX}typing`) continue;
        const receipt = receipts.get(item.id) || '';
        rows.push({ key: `item:${item.id}`, sig: receipt, build: () => itemNode(chat, item, receipt) });
      }
    }
    reconcile($('agent-log'), rows);

    const typing = [];
    const now = Date.now();
    for (const chat of chats) {
      for (const [role, until] of chat.typing) if (until > now) typing.push(`${ROLE_NAMES[role] || role} is typing…`);
    }
    $('agent-typing').textContent = typing.join(' ');
  }

  // message.delivered / message.read events name the item they acknowledge.
  function receiptTarget(item) {
    if (item.content_type !== `${EVENT_PREFIX}message.delivered` && item.content_type !== `${EVENT_PREFIX}message.read`) return null;
    try {
      const content = JSON.parse(item.content || '{}');
      return typeof content.messageId === 'string' ? content.messageId : null;
    } catch {
      return null;
    }
  }

  function receiptsOf(chat) {
    const receipts = new Map();
    for (const item of chat.items) {
      const target = receiptTarget(item);
      if (!target) continue;
      const read = item.content_type.endsWith('message.read');
      if (read || !receipts.has(target)) receipts.set(target, read ? '✓✓ read' : '✓ delivered');
    }
    return receipts;
  }

  function who(item) {
    const role = ROLE_NAMES[item.participant_role] || item.participant_role;
    const name = item.display_name && item.display_name !== role ? `${item.display_name} · ${role}` : role;
    return el('span', { class: 'who' },
      el('span', { text: name }),
      item.visibility && item.visibility !== 'ALL' ? el('span', { class: 'tag warn', text: `visible to ${item.visibility.toLowerCase()} only` }) : null,
      el('span', { text: timeOf(item.absolute_time) }));
  }

  function attachmentNode(chat, item) {
    const a = item.attachment || {};
    const href = `/sim/chats/${encodeURIComponent(chat.summary.contact_id)}/attachments/${encodeURIComponent(a.id || '')}`;
    const type = a.content_type || item.content_type || '';
    const parts = [el('span', { class: 'file', text: `📎 ${a.name || 'attachment'}` }), el('span', { class: 'kind', text: `${type} · ${sizeOf(a.size)} · ${a.status || ''}` })];
    if (type.startsWith('image/')) parts.push(el('img', { src: href, alt: a.name || 'image attachment', loading: 'lazy' }));
    else if (type.startsWith('audio/')) parts.push(el('audio', { controls: true, preload: 'metadata', src: href, 'aria-label': a.name || 'audio attachment' }));
    parts.push(el('a', { href, download: a.name || true, text: 'Download' }));
    return el('div', { class: 'bubble attachment' }, ...parts);
  }

  function eventText(item) {
    const kind = (item.content_type || '').startsWith(EVENT_PREFIX) ? item.content_type.slice(EVENT_PREFIX.length) : item.content_type;
    const name = item.display_name || ROLE_NAMES[item.participant_role] || item.participant_role;
    switch (kind) {
      case 'chat.ended': return 'Chat ended';
      case 'participant.joined': return `${name} joined`;
      case 'participant.left': return `${name} left`;
      case 'transfer.succeeded': return 'Transferred';
      case 'transfer.failed': return 'Transfer failed';
      default: return null;
    }
  }

  // A bot's menu (Connect interactive message) or the customer's choice, in words; null
  // when unreadable (then shown generically).
  function interactiveText(item) {
    const prefix = 'application/vnd.amazonaws.connect.message.interactive';
    if (item.content_type !== prefix && item.content_type !== `${prefix}.response`) return null;
    try {
      const v = JSON.parse(item.content || '');
      const data = v && v.data || {};
      const content = data.content && typeof data.content === 'object' ? data.content : data;
      if (item.content_type !== prefix) return typeof content.title === 'string' ? `☑ ${content.title}` : null;
      const options = Array.isArray(content.elements) ? content.elements.map((e, i) => `${i + 1}. ${e && e.title || ''}`) : [];
      return [`${v.templateType || 'Menu'}: ${content.title || ''}`, ...options].join('\n');
    } catch {
      return null;
    }
  }

  function itemNode(chat, item, receipt) {
    if (item.type === 'EVENT') {
      const text = eventText(item);
      if (text) return el('li', { class: 'center' }, el('span', { class: 'note', text }));
      return el('li', { class: 'center' }, el('span', { class: 'note' }, generic(`${ROLE_NAMES[item.participant_role] || item.participant_role}: ${item.content_type}`, item.content === null ? item : item.content)));
    }
    const li = el('li', { class: `item role-${item.participant_role}` }, who(item));
    if (item.type === 'ATTACHMENT') {
      li.append(attachmentNode(chat, item));
    } else if (item.type === 'MESSAGE' && (item.content_type === 'text/plain' || item.content_type === 'text/markdown')) {
      li.append(el('div', { class: 'bubble', text: item.content || '' }));
    } else if (item.type === 'MESSAGE' && interactiveText(item)) {
      li.append(el('div', { class: 'bubble', text: interactiveText(item) }));
    } else {
      li.append(el('div', { class: 'bubble' }, generic(`${item.type} ${item.content_type}`, item.content ?? item)));
    }
    if (receipt) li.append(el('span', { class: 'receipt', text: receipt }));
    return li;
  }

  function renderCalls() {
    const list = $('calls');
    const calls = model.calls.slice(-CALLS_SHOWN).reverse();
    const fresh = model.freshCalls;
    model.freshCalls = 0;
    list.replaceChildren(...calls.map((call, i) => el('li', { class: i < fresh ? 'fresh' : null },
      el('span', { text: clockOf(call.at) }),
      el('span', { text: call.operation }),
      el('span', { class: call.status >= 400 ? 'err' : null, text: call.status }))));
  }

  function renderFigures() {
    const f = model.figures;
    const pill = $('router-state');
    const body = $('actors').tBodies[0];
    const gauges = $('gauges');
    if (!f) {
      pill.dataset.state = 'unknown';
      pill.textContent = 'router: no figures (only local mode reads them)';
      body.replaceChildren();
      gauges.replaceChildren();
      return;
    }
    pill.dataset.state = f.router === 'up' ? 'up' : 'down';
    pill.textContent = f.router === 'up' ? `router up · as of ${clockOf(f.at)}` : `router down: ${f.error || 'no answer'}`;
    if (f.router !== 'up') return;
    body.replaceChildren(...(f.actors || []).map((a) => el('tr', {},
      el('th', { scope: 'row', text: a.actor }),
      el('td', { text: num(a.messages) }),
      el('td', { class: a.mailbox > 0 ? 'busy' : null, text: num(a.mailbox) }),
      el('td', { class: a.errors > 0 ? 'hot' : null, text: num(a.errors) }),
      el('td', { class: a.restarts > 0 ? 'hot' : null, text: num(a.restarts) }))));
    const ff = f.ffmpeg || {};
    const pairs = [
      ['ffmpeg warm', ff.warm], ['ffmpeg busy', ff.busy], ['ffmpeg queued', ff.queued],
      ['ffmpeg jobs', ff.jobs], ['ffmpeg failed', ff.failed], ['ffmpeg restarts', ff.restarts],
      ['conversations', f.conversations], ['chat sessions', f.sessions],
      ['queue in flight', f.in_flight], ['dead letters', f.dead_letters],
    ];
    gauges.replaceChildren(...pairs.flatMap(([label, value]) => [el('dt', { text: label }), el('dd', { text: num(value) })]));
  }

  // ---------------------------------------------------------------- the stream

  function seqOf(event) {
    const id = event.lastEventId || '';
    const n = Number(id.slice(id.lastIndexOf('-') + 1));
    return Number.isFinite(n) ? n : 0;
  }

  function connect() {
    const conn = $('conn');
    const source = new EventSource('/sim/events');
    const on = (name, handler) => source.addEventListener(name, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        notice(`The simulator sent an unreadable "${name}" event.`);
        return;
      }
      handler(data, seqOf(event));
    });
    source.onopen = () => { conn.dataset.state = 'live'; conn.textContent = 'Live'; };
    source.onerror = () => {
      conn.dataset.state = 'down';
      conn.textContent = source.readyState === EventSource.CLOSED ? 'Disconnected' : 'Reconnecting…';
    };
    on('snapshot', (snap) => applySnapshot(snap));
    on('customer.message', (sent, seq) => addSent(sent, seq));
    on('inbox', (data, seq) => addInbox(data.wa_id, data.entry, seq, data.at));
    on('chat', (data) => setChat(data.chat));
    on('item', (data) => addItem(data, data.item));
    on('call', (call) => {
      model.calls.push(call);
      if (model.calls.length > CALLS_KEPT) model.calls.splice(0, model.calls.length - CALLS_KEPT);
      model.freshCalls += 1;
      scheduleRender('calls');
    });
    on('figures', (figures) => { model.figures = figures; scheduleRender('figures'); });
  }

  // ---------------------------------------------------------------- actions

  function selectedCustomer() {
    const c = model.selected ? customer(model.selected) : null;
    if (!c) throw new Error('pick or create a customer first');
    return c;
  }

  async function customerSends(message) {
    const c = selectedCustomer();
    const body = { ...message, profile_name: c.profile_name || `Customer ${c.wa_id.slice(-4)}` };
    await api('POST', `/sim/customers/${encodeURIComponent(c.wa_id)}/messages`, body);
  }

  function mediaTypeFor(mime) {
    if (mime === 'image/webp') return 'sticker';
    if (mime.startsWith('image/')) return 'image';
    if (mime.startsWith('video/')) return 'video';
    if (mime.startsWith('audio/')) return 'audio';
    return 'document';
  }

  async function customerSendsFile(file, asVoiceNote) {
    const mime = file.type || 'application/octet-stream';
    const type = asVoiceNote ? 'audio' : mediaTypeFor(mime);
    const caption = $('phone-text').value.trim();
    const media = { content_base64: await fileToBase64(file), mime_type: mime };
    const payload = {};
    if (asVoiceNote) media.voice_note = true;
    if (type === 'document' && file.name) media.filename = file.name;
    if (caption && !asVoiceNote && type !== 'audio' && type !== 'sticker') payload.caption = caption;
    await customerSends({ type, [type]: payload, media });
    if (payload.caption) $('phone-text').value = '';
  }

  function guard(action) {
    return async (...args) => {
      try {
        await action(...args);
      } catch (error) {
        notice(error && error.message ? error.message : String(error));
      }
    };
  }

  const recorder = { media: null, chunks: [], started: 0, timer: 0, cancelled: false };

  function recorderType() {
    if (typeof MediaRecorder === 'undefined') return null;
    for (const type of ['audio/ogg;codecs=opus', 'audio/webm;codecs=opus', 'audio/webm']) {
      if (MediaRecorder.isTypeSupported(type)) return type;
    }
    return '';
  }

  async function toggleRecording() {
    const button = $('phone-record');
    if (recorder.media) {
      recorder.media.stop();
      return;
    }
    const type = recorderType();
    if (type === null || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error('This browser cannot record audio here (MediaRecorder and a secure origin are needed); send an audio file as a voice note instead.');
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      throw new Error(`The microphone is not available: ${error && error.message ? error.message : error}`);
    }
    const media = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    recorder.media = media;
    recorder.chunks = [];
    recorder.cancelled = false;
    recorder.started = Date.now();
    media.ondataavailable = (event) => { if (event.data && event.data.size) recorder.chunks.push(event.data); };
    media.onstop = guard(async () => {
      stream.getTracks().forEach((track) => track.stop());
      clearInterval(recorder.timer);
      recorder.media = null;
      button.setAttribute('aria-pressed', 'false');
      button.textContent = '🎤 Voice note';
      $('phone-record-cancel').hidden = true;
      $('phone-recording').textContent = '';
      if (recorder.cancelled) return;
      const blob = new Blob(recorder.chunks, { type: media.mimeType || type || 'audio/webm' });
      if (!blob.size) throw new Error('Nothing was recorded.');
      $('phone-recording').textContent = 'Sending voice note…';
      try {
        await customerSendsFile(blob, true);
      } finally {
        $('phone-recording').textContent = '';
      }
    });
    media.start(250);
    button.setAttribute('aria-pressed', 'true');
    button.textContent = '■ Stop and send';
    $('phone-record-cancel').hidden = false;
    const tick = () => { $('phone-recording').textContent = `Recording ${Math.floor((Date.now() - recorder.started) / 1000)} s`; };
    tick();
    recorder.timer = setInterval(tick, 1000);
  }

  let lastTypingSent = 0;
  async function agentTyping() {
    const chat = openChat();
    if (!chat || Date.now() - lastTypingSent < TYPING_EVERY_MS) return;
    lastTypingSent = Date.now();
    await api('POST', `/sim/chats/${encodeURIComponent(chat.summary.contact_id)}/agent/events`, { content_type: `${EVENT_PREFIX}typing` });
  }

  function requireOpenChat() {
    const chat = openChat();
    if (!chat) throw new Error('There is no open chat for this customer: the customer writes first.');
    return chat;
  }

  function wire() {
    $('notice').addEventListener('click', (event) => {
      if (event.target instanceof HTMLElement && event.target.hasAttribute('data-dismiss')) $('notice').hidden = true;
    });
    $('customer-select').addEventListener('change', (event) => selectCustomer(event.target.value));
    $('customer-form').addEventListener('submit', guard(async (event) => {
      event.preventDefault();
      const number = digits($('new-number').value.trim());
      if (!/^[0-9]{6,15}$/.test(number)) throw new Error('A WhatsApp number is 6 to 15 digits (country code first).');
      const name = $('new-name').value.trim();
      selectCustomer(number, name || null);
      $('new-number').value = '';
      $('new-name').value = '';
      $('phone-text').focus();
    }));
    $('phone-compose').addEventListener('submit', guard(async (event) => {
      event.preventDefault();
      const input = $('phone-text');
      const text = input.value.trim();
      if (!text) return;
      input.value = '';
      try {
        await customerSends({ type: 'text', text: { body: text } });
      } catch (error) {
        input.value = text;
        throw error;
      }
    }));
    $('phone-log').addEventListener('click', guard(async (event) => {
      const button = event.target instanceof Element ? event.target.closest('button.choice') : null;
      if (!button) return;
      const kind = button.dataset.kind === 'list_reply' ? 'list_reply' : 'button_reply';
      const reply = { id: button.dataset.id, title: button.dataset.title };
      if (kind === 'list_reply' && button.dataset.description) reply.description = button.dataset.description;
      await customerSends({ type: 'interactive', context: { id: button.dataset.context }, interactive: { type: kind, [kind]: reply } });
    }));
    $('phone-file-btn').addEventListener('click', () => $('phone-file').click());
    $('phone-voice-file-btn').addEventListener('click', () => $('phone-voice-file').click());
    for (const [id, voice] of [['phone-file', false], ['phone-voice-file', true]]) {
      $(id).addEventListener('change', guard(async (event) => {
        const input = event.target;
        const file = input.files && input.files[0];
        input.value = '';
        if (file) await customerSendsFile(file, voice);
      }));
    }
    $('phone-record').addEventListener('click', guard(toggleRecording));
    $('phone-record-cancel').addEventListener('click', () => {
      if (!recorder.media) return;
      recorder.cancelled = true;
      recorder.media.stop();
    });

    const agentText = $('agent-text');
    agentText.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $('agent-compose').requestSubmit();
      }
    });
    agentText.addEventListener('input', guard(agentTyping));
    $('agent-compose').addEventListener('submit', guard(async (event) => {
      event.preventDefault();
      const text = agentText.value.trim();
      if (!text) return;
      const chat = requireOpenChat();
      agentText.value = '';
      try {
        await api('POST', `/sim/chats/${encodeURIComponent(chat.summary.contact_id)}/agent/messages`, { text });
      } catch (error) {
        agentText.value = text;
        throw error;
      }
    }));
    $('agent-file-btn').addEventListener('click', () => $('agent-file').click());
    $('agent-file').addEventListener('change', guard(async (event) => {
      const input = event.target;
      const file = input.files && input.files[0];
      input.value = '';
      if (!file) return;
      const chat = requireOpenChat();
      const attachment = { name: file.name, content_type: file.type || 'application/octet-stream', content_base64: await fileToBase64(file) };
      await api('POST', `/sim/chats/${encodeURIComponent(chat.summary.contact_id)}/agent/messages`, { attachment });
    }));
    $('agent-end').addEventListener('click', guard(async () => {
      const chat = requireOpenChat();
      await api('POST', `/sim/chats/${encodeURIComponent(chat.summary.contact_id)}/end`);
    }));
  }

  wire();
  connect();
})();
