/** Telegram runs the same compliance suite as every other channel, against a fake Bot API that checks the request's shape. */
import { telegramDelivery } from '../../src/delivery/index.js';
import { channelCompliance } from './channel-compliance.js';
import { FakeTelegram } from './fake-apis.js';

const TOKEN = '123456:SECRET-telegram-token';
const CHAT = 4242;

channelCompliance({
  name: 'telegram',
  channel: 'telegram',
  fake: (clock) => new FakeTelegram(clock, TOKEN, CHAT),
  create: (fake, init, deps) =>
    telegramDelivery({ ...init, botToken: TOKEN, chatId: CHAT, baseUrl: fake.url }, deps),
  rateLimits: ['429'],
  secrets: [TOKEN],
});
