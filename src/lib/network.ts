/**
 * The network an address belongs to for the new-IP check: IPv4 /24, IPv6 /64 (one customer's allocation
 * in either case, so a DHCP renewal is not a "new IP"). IPv4-mapped IPv6 addresses count as IPv4.
 */
import ipaddr from 'ipaddr.js';

export function networkOf(ip: string | undefined): string | undefined {
  if (!ip || !ipaddr.isValid(ip)) return undefined;
  let address = ipaddr.parse(ip);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) address = (address as ipaddr.IPv6).toIPv4Address();
  if (address.kind() === 'ipv4') {
    const [a, b, c] = (address as ipaddr.IPv4).octets;
    return `${a}.${b}.${c}.0/24`;
  }
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `${parts.join(':')}::/64`;
}
