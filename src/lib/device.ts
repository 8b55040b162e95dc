/**
 * What a session shows about the device it came from: the app's device id and name when it sent them,
 * and the parsed user agent (browser, OS, device) otherwise. Strings are bounded so a client cannot
 * store megabytes in a session row.
 */
import UAParser from 'ua-parser-js';

/** What a session or token was created from; shown to the user in their list of sessions. */
export interface DeviceInfo {
  /** The app's install id (first-party apps send it at login; refreshes must present it again). */
  device_id?: string | undefined;
  device_name?: string | undefined;
  user_agent?: string | undefined;
  browser?: string | undefined;
  os?: string | undefined;
  device?: string | undefined;
}

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
