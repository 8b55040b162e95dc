/**
 * What a session shows about the device it came from: the app's device id and name when it sent them,
 * and the parsed user agent (browser, OS, device) otherwise. Strings are bounded so a client cannot
 * store megabytes in a session row.
 */
import UAParser from 'ua-parser-js';
import type { DeviceInfo } from '../db/schema/index.js';

const clip = (value: string | undefined, max: number) => (value ? value.slice(0, max) : undefined);
const join = (...parts: Array<string | undefined>) => parts.filter(Boolean).join(' ') || undefined;

export function describeDevice(userAgent: string | undefined, deviceId?: string, deviceName?: string): DeviceInfo {
  const ua = clip(userAgent, 512);
  const parsed = ua ? new UAParser(ua).getResult() : undefined;
  const info: DeviceInfo = {
    device_id: clip(deviceId, 200),
    device_name: clip(deviceName, 200),
    user_agent: ua,
    browser: clip(join(parsed?.browser.name, parsed?.browser.version), 100),
    os: clip(join(parsed?.os.name, parsed?.os.version), 100),
    device: clip(join(parsed?.device.vendor, parsed?.device.model, parsed?.device.type), 100),
  };
  return Object.fromEntries(Object.entries(info).filter(([, v]) => v !== undefined)) as DeviceInfo;
}
