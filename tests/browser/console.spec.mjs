// Drives the waconnect local console in Debian's chromium through playwright-core.
// Run by tests/browser_console.rs, which starts `waconnect local` and passes:
//   CONSOLE_URL      the simulator's address (the console is at /)
//   SCREENSHOT_DIR   where console.png and console-narrow.png go (docs/ by default)
//   CHROMIUM_PATH    the browser (default /usr/bin/chromium)
// Exits 0 only when every step was seen to happen; otherwise prints why and exits 1.
// Nothing here is skipped: a missing browser or library is a failure that says so.

import fs from 'node:fs';
import path from 'node:path';

const FLOW_TIMEOUT = 60_000;
const base = process.env.CONSOLE_URL;
const shots = process.env.SCREENSHOT_DIR;
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

function fail(message) {
  console.error(`BROWSER TEST FAILED: ${message}`);
  process.exit(1);
}

if (!base || !shots) fail('CONSOLE_URL and SCREENSHOT_DIR must be set (tests/browser_console.rs sets them)');
if (!fs.existsSync(chromiumPath)) {
  fail(`chromium is not installed at ${chromiumPath}: ./scripts/test.sh installs it (Debian package chromium)`);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (error) {
  fail(`playwright-core is not installed in tests/browser/node_modules (${error.message}): ./scripts/test.sh installs it with npm ci`);
}

// The flags this machine's chromium needs (no sandbox as root, no GPU, no background
// traffic to hosts a closed network refuses), plus a fake microphone for voice notes.
const args = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

let browser;
try {
  // launch() gives every run a fresh, empty --user-data-dir.
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args, timeout: 60_000 });
} catch (error) {
  fail(`chromium at ${chromiumPath} could not be launched: ${error.message}`);
}

const problems = [];
const step = async (name, run) => {
  const started = Date.now();
  try {
    await run();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (error) {
    throw new Error(`${name}: ${error.message.split('\n').slice(0, 6).join('\n')}`);
  }
};

const CUSTOMER = '5491155550123';
const HELLO = 'Hola, necesito ayuda con mi pedido';
const REPLY = '¡Hola Lucía! ¿Cuál es el número de pedido?';

// A real PDF, small: what an agent would send.
const PDF = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n' +
  '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);

try {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 1000 },
    permissions: ['microphone'],
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  const page = await context.newPage();
  page.setDefaultTimeout(FLOW_TIMEOUT);
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    // The event stream is cut when the page closes; anything else failing is a problem.
    if (!request.url().endsWith('/sim/events')) problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
  });

  const phoneLog = page.locator('#phone-log');
  const agentLog = page.locator('#agent-log');

  await step('the console loads and goes live', async () => {
    const response = await page.goto(base + '/');
    if (!response || response.status() !== 200) throw new Error(`GET / answered ${response && response.status()}`);
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.locator('#router-state[data-state="up"]').waitFor();
  });

  await step('keyboard: the first Tab reaches the skip link, which leads to the message box', async () => {
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement && document.activeElement.className);
    if (first !== 'skip') throw new Error(`first focus was ${first}`);
  });

  await step('a customer number is created from the form', async () => {
    await page.fill('#new-number', CUSTOMER);
    await page.fill('#new-name', 'Lucía');
    await page.press('#new-name', 'Enter');
    await page.waitForFunction((id) => document.querySelector('#customer-select').value === id, CUSTOMER);
    const focused = await page.evaluate(() => document.activeElement.id);
    if (focused !== 'phone-text') throw new Error(`focus went to ${focused}, not the message box`);
  });

  await step('the customer texts (Enter sends) and the agent sees it', async () => {
    await page.keyboard.type(HELLO);
    await page.keyboard.press('Enter');
    await phoneLog.locator('li.out', { hasText: HELLO }).waitFor();
    await agentLog.locator('li.role-CUSTOMER', { hasText: HELLO }).waitFor();
    await page.locator('#chat-state', { hasText: 'active' }).waitFor();
  });

  const hello = phoneLog.locator('li.out', { hasText: HELLO });
  await step('the phone shows blue ticks and the ✅ reaction on the customer message', async () => {
    await hello.locator('.ticks.read').waitFor();
    await hello.locator('.reactions', { hasText: '✅' }).waitFor();
  });

  await step('the agent types (Connect typing event) and replies with Enter; the phone shows the reply', async () => {
    await page.click('#agent-text');
    await page.keyboard.type(REPLY);
    await page.locator('#agent-typing', { hasText: 'Agent is typing' }).waitFor();
    await page.keyboard.press('Enter');
    await agentLog.locator('li.role-AGENT', { hasText: REPLY }).waitFor();
    await phoneLog.locator('li.in', { hasText: REPLY }).waitFor();
  });

  await step('the customer uploads an image; the agent gets it as an attachment that displays', async () => {
    // A real PNG drawn by the browser: a parcel with its order number.
    const png = Buffer.from(await page.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 200;
      const g = canvas.getContext('2d');
      g.fillStyle = '#cfe8f7';
      g.fillRect(0, 0, 320, 200);
      g.fillStyle = '#b7834f';
      g.fillRect(70, 50, 180, 120);
      g.fillStyle = '#9a6a3c';
      g.fillRect(150, 50, 20, 120);
      g.fillStyle = '#fff';
      g.fillRect(88, 120, 70, 34);
      g.fillStyle = '#222';
      g.font = 'bold 14px sans-serif';
      g.fillText('#4821', 98, 142);
      return canvas.toDataURL('image/png').split(',')[1];
    }), 'base64');
    await page.fill('#phone-text', 'Foto del paquete');
    await page.setInputFiles('#phone-file', { name: 'paquete.png', mimeType: 'image/png', buffer: png });
    const sent = phoneLog.locator('li.out', { hasText: 'Foto del paquete' });
    await sent.locator('img').waitFor();
    const attachment = agentLog.locator('li.role-CUSTOMER .attachment', { hasText: '.png' });
    await attachment.waitFor();
    await page.waitForFunction(() => [...document.querySelectorAll('#agent-log .attachment img')]
      .some((img) => img.complete && img.naturalWidth > 0));
    const href = await attachment.locator('a').getAttribute('href');
    const file = await page.request.get(base + href);
    const body = await file.body();
    if (file.status() !== 200 || file.headers()['content-type'] !== 'image/png' || body.length !== png.length) {
      throw new Error(`download ${href}: ${file.status()} ${file.headers()['content-type']} ${body.length} bytes (sent ${png.length})`);
    }
    await sent.locator('.reactions').waitFor();
  });

  await step('the customer records a voice note (fake microphone); the agent gets a WAV', async () => {
    await page.click('#phone-record');
    await page.locator('#phone-record[aria-pressed="true"]').waitFor();
    // Record about two seconds of the fake microphone's tone.
    await page.locator('#phone-recording', { hasText: 'Recording 2 s' }).waitFor();
    await page.click('#phone-record');
    await phoneLog.locator('li.out', { hasText: 'Voice note' }).locator('audio').waitFor();
    await agentLog.locator('li.role-CUSTOMER .attachment', { hasText: '.wav' }).locator('audio').waitFor();
  });

  await step('the agent sends a PDF; the phone gets a document link', async () => {
    await page.setInputFiles('#agent-file', { name: 'factura.pdf', mimeType: 'application/pdf', buffer: PDF });
    await agentLog.locator('li.role-AGENT .attachment', { hasText: 'factura.pdf' }).waitFor();
    await phoneLog.locator('li.in a', { hasText: 'factura' }).waitFor();
  });

  await step("a bot's quick reply shows as buttons; a tap answers it in the chat", async () => {
    const chats = await (await page.request.get(`${base}/sim/chats`)).json();
    const chat = chats.chats.find((c) => c.customer_id === CUSTOMER && c.state === 'active');
    if (!chat) throw new Error('no active chat for the customer');
    const template = { templateType: 'QuickReply', version: '1.0',
      data: { content: { title: '¿Te ayudo con algo más?', elements: [{ title: 'Sí' }, { title: 'No, gracias' }] } } };
    const sent = await page.request.post(`${base}/sim/chats/${chat.contact_id}/agent/messages`, {
      data: { text: JSON.stringify(template), content_type: 'application/vnd.amazonaws.connect.message.interactive', role: 'SYSTEM', display_name: 'BOT' },
    });
    if (!sent.ok()) throw new Error(`agent message answered ${sent.status()}`);
    await agentLog.locator('li.role-SYSTEM', { hasText: 'QuickReply: ¿Te ayudo con algo más?' }).waitFor();
    const menu = phoneLog.locator('li.in', { hasText: '¿Te ayudo con algo más?' });
    await menu.locator('button.choice', { hasText: 'No, gracias' }).click();
    await agentLog.locator('li.role-CUSTOMER', { hasText: '☑ No, gracias' }).waitFor();
  });

  await step('the strip shows the router figures and the AWS calls', async () => {
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#actors tbody tr')];
      const conversation = rows.find((r) => r.cells[0] && r.cells[0].textContent === 'conversation');
      return conversation && Number(conversation.cells[1].textContent) > 0;
    });
    // The voice note went through the router's ffmpeg pool.
    await page.waitForFunction(() => {
      const terms = [...document.querySelectorAll('#gauges dt')];
      const jobs = terms.find((dt) => dt.textContent === 'ffmpeg jobs');
      return jobs && Number(jobs.nextElementSibling.textContent) >= 1;
    });
    await page.locator('#calls li', { hasText: 'StartChatContact' }).first().waitFor();
    await page.locator('#calls li', { hasText: 'SendWhatsAppMessage' }).first().waitFor();
  });

  fs.mkdirSync(shots, { recursive: true });
  await step('screenshot: wide window', async () => {
    await page.setViewportSize({ width: 1440, height: 1200 });
    for (const log of ['#phone-log', '#agent-log']) {
      await page.locator(log).evaluate((node) => { node.scrollTop = node.scrollHeight; });
    }
    await page.screenshot({ path: path.join(shots, 'console.png') });
  });

  await step('narrow window: panes stack; screenshot', async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    const phone = await page.locator('.phone-pane').boundingBox();
    const agent = await page.locator('.agent-pane').boundingBox();
    if (!(agent.y >= phone.y + phone.height - 1)) throw new Error(`agent pane at y=${agent.y}, phone pane ends at ${phone.y + phone.height}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 1) throw new Error(`the page is ${overflow}px wider than a 420px window`);
    await page.screenshot({ path: path.join(shots, 'console-narrow.png'), fullPage: true });
    await page.setViewportSize({ width: 1440, height: 1000 });
  });

  await step('the agent ends the chat', async () => {
    await page.click('#agent-end');
    await agentLog.locator('li', { hasText: 'Chat ended' }).waitFor();
    await page.locator('#chat-state', { hasText: 'ended' }).waitFor();
    await page.locator('#agent-send:disabled').waitFor();
  });

  await step('a reload rebuilds everything from the snapshot', async () => {
    await page.reload();
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.locator('#customer-select').selectOption(CUSTOMER);
    await phoneLog.locator('li.out', { hasText: HELLO }).locator('.reactions', { hasText: '✅' }).waitFor();
    await agentLog.locator('li', { hasText: 'Chat ended' }).waitFor();
  });

  await context.close();
} catch (error) {
  problems.unshift(error.message);
} finally {
  await browser.close();
}

if (problems.length) fail(problems.join('\n'));
console.log('BROWSER TEST PASSED');
