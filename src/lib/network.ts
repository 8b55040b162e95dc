/**
 * Address rules. Two rules for "the same client" by address, both treating IPv4-mapped IPv6 addresses as IPv4:
 * - `networkOf`: the network for the new-IP check and the refresh retry window: IPv4 /24, IPv6 /64 (one
 *   customer's allocation in either case, so a DHCP renewal is not a "new IP");
 * - `clientAddressKey`: the key request counters (rate limits, brute-force IP counts) count under: the IPv4
 *   address, the IPv6 /64. A /64 is the smallest block an ISP assigns to one subscriber (RFC 6177), so one
 *   host can use any of its 2^64 addresses; counting them one by one would leave one attacker unlimited.
 */
import ipaddr from 'ipaddr.js';

function parse(ip: string | undefined): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (!ip || !ipaddr.isValid(ip)) return undefined;
  const address = ipaddr.parse(ip);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) return (address as ipaddr.IPv6).toIPv4Address();
  return address;
}

const ipv6Prefix64 = (address: ipaddr.IPv6) => `${address.parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;

export function networkOf(ip: string | undefined): string | undefined {
  const address = parse(ip);
  if (!address) return undefined;
  if (address.kind() === 'ipv4') {
    const [a, b, c] = (address as ipaddr.IPv4).octets;
    return `${a}.${b}.${c}.0/24`;
  }
  return ipv6Prefix64(address as ipaddr.IPv6);
}

/** The counting key of a client address (see the header); an unparsable value is its own key. */
export function clientAddressKey(ip: string): string {
  const address = parse(ip);
  if (!address) return ip;
  return address.kind() === 'ipv4' ? address.toString() : ipv6Prefix64(address as ipaddr.IPv6);
}

/** Hosts that are always this machine: plain http to them never crosses a network (RFC 8252 §8.3). */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Whether a URL is plain http to a loopback host (the one place http is accepted for a client's URLs). */
export const isLoopbackHttp = (url: URL): boolean => url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
