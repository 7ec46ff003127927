import { FakeKasaDevice, loadFixture, type KasaFixture } from './fake-kasa-device';

/** A load whose power (W) depends on the time since the home started, s. */
type Load = (seconds: number) => number;

const VOLTS = 230;

/** A fridge compressor: 95 W for 40 s out of every 100 s, a little noise. */
const fridge: Load = (s) => (s % 100 < 40 ? 95 + 3 * Math.sin(s) : 1.2);
/** A television: standby, then on with a picture-dependent draw. */
const television: Load = (s) => (s % 240 < 60 ? 0.5 : 85 + 20 * Math.abs(Math.sin(s / 7)));
/** A kettle: 2 kW bursts of 30 s every 3 minutes. */
const kettle: Load = (s) => (s % 180 >= 150 ? 2000 + 15 * Math.sin(s * 3) : 0);
const steady =
  (watts: number, wobble = 0): Load =>
  (s) =>
    watts + wobble * Math.sin(s / 5);

interface MeteredLoad {
  load: Load;
  /** Energy so far, Wh, integrated from the load. */
  energyWh: number;
  lastSeconds: number;
}

function meter(load: Load): MeteredLoad {
  return { load, energyWh: 0, lastSeconds: 0 };
}

/** Advances a load to `seconds` and returns its power, W. */
function sample(metered: MeteredLoad, seconds: number): number {
  const power = Math.max(0, metered.load(seconds));
  metered.energyWh += (power * Math.max(0, seconds - metered.lastSeconds)) / 3600;
  metered.lastSeconds = seconds;
  return power;
}

/** Newer hardware's milli-unit reply. */
function milliUnits(metered: MeteredLoad, seconds: number): Record<string, number> {
  const power = sample(metered, seconds);
  return {
    power_mw: Math.round(power * 1000),
    voltage_mv: Math.round((VOLTS + 2 * Math.sin(seconds / 11)) * 1000),
    current_ma: Math.round((power / VOLTS) * 1000 * 1.05),
    total_wh: Math.floor(metered.energyWh),
  };
}

/** HS110 hardware 1's base-unit reply (W, V, A, kWh). */
function baseUnits(metered: MeteredLoad, seconds: number): Record<string, number> {
  const power = sample(metered, seconds);
  return {
    power,
    voltage: VOLTS + 2 * Math.sin(seconds / 11),
    current: (power / VOLTS) * 1.05,
    total: Math.round(metered.energyWh) / 1000,
  };
}

/**
 * A copy of a strip's fixture whose outlets carry the given names and are switched on (the
 * fixtures were recorded with every outlet off, yet the demo's loads draw power).
 */
function withOutletAliases(fixture: KasaFixture, aliases: string[]): KasaFixture {
  const copy = structuredClone(fixture);
  const sysinfo = copy.system?.get_sysinfo as
    { children?: { alias: string; state?: number }[] } | undefined;
  (sysinfo?.children ?? []).forEach((child, index) => {
    child.alias = aliases[index] ?? child.alias;
    child.state = 1;
  });
  return copy;
}

export interface SimulatedHome {
  devices: FakeKasaDevice[];
  /** kasa-poll's device list for all of them, one per line. */
  deviceList: string;
  /** Device ids whose readings should appear: every metered plug and outlet. */
  meteredIds: string[];
  /** Device ids of devices without a meter. */
  meterlessIds: string[];
  stop(): Promise<void>;
}

/**
 * Starts the demo's devices on 127.0.0.2 - 127.0.0.7 (one address each, on `port`): an HS110 of
 * hardware 1 (W/V/A/kWh), an HS110 v4 and a KP115 (mW/mV/mA/Wh), an HS300 with six metered
 * outlets, an HS100 and a KP303 strip without meters. Loads change the way real ones do.
 * With `discovery`, they also answer discovery broadcast to 127.255.255.255 (the Discover button).
 */
export async function startSimulatedHome(
  port = 9999,
  firstHost = 2,
  options: { discovery?: boolean } = {},
): Promise<SimulatedHome> {
  const started = Date.now();
  const seconds = () => (Date.now() - started) / 1000;
  const host = (offset: number) => `127.0.0.${firstHost + offset}`;
  const id = (n: number) => `8006A0B1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E6${String(n).padStart(2, '0')}`;
  const stripLoads = [
    steady(120, 25),
    steady(28, 1),
    steady(9, 0.3),
    steady(40),
    steady(6, 2),
    steady(750, 40),
  ].map(meter);
  const fridgeMeter = meter(fridge);
  const tvMeter = meter(television);
  const kettleMeter = meter(kettle);
  const onTime = () => 86_400 + Math.floor(seconds());

  const devices = [
    new FakeKasaDevice({
      host: host(0),
      port,
      discovery: options.discovery === true,
      fixture: loadFixture('HS110(EU)_1.0_1.2.5'),
      deviceId: id(1),
      alias: 'Fridge',
      onTime,
      emeter: () => baseUnits(fridgeMeter, seconds()),
    }),
    new FakeKasaDevice({
      host: host(1),
      port,
      discovery: options.discovery === true,
      fixture: loadFixture('HS110(EU)_4.0_1.0.4'),
      deviceId: id(2),
      alias: 'TV',
      onTime,
      emeter: () => milliUnits(tvMeter, seconds()),
    }),
    new FakeKasaDevice({
      host: host(2),
      port,
      discovery: options.discovery === true,
      fixture: loadFixture('KP115(EU)_1.0_1.0.16'),
      deviceId: id(3),
      alias: 'Kettle',
      onTime,
      emeter: () => milliUnits(kettleMeter, seconds()),
    }),
    new FakeKasaDevice({
      host: host(3),
      port,
      discovery: options.discovery === true,
      fixture: withOutletAliases(loadFixture('HS300(US)_2.0_1.0.3'), [
        'Desk PC',
        'Monitor',
        'Router',
        'Lamp',
        'Charger',
        'Heater',
      ]),
      deviceId: id(4),
      alias: 'Office strip',
      onTime,
      emeter: (childId) =>
        milliUnits(stripLoads[Number(childId?.slice(-2) ?? 0)] ?? stripLoads[0]!, seconds()),
    }),
    new FakeKasaDevice({
      host: host(4),
      port,
      discovery: options.discovery === true,
      fixture: loadFixture('HS100(UK)_1.0_1.2.6'),
      deviceId: id(5),
      alias: 'Hall lamp',
      onTime,
    }),
    new FakeKasaDevice({
      host: host(5),
      port,
      discovery: options.discovery === true,
      fixture: withOutletAliases(loadFixture('KP303(UK)_1.0_1.0.3'), [
        'Pond pump',
        'Fairy lights',
        'Fountain',
      ]),
      deviceId: id(6),
      alias: 'Garden strip',
      onTime,
    }),
  ];
  try {
    for (const device of devices) await device.start();
  } catch (error) {
    await Promise.all(devices.map((device) => device.stop()));
    throw error;
  }
  const strip = devices[3]!;
  return {
    devices,
    deviceList: devices
      .map((device) => (port === 9999 ? device.host : `${device.host}:${device.port}`))
      .join('\n'),
    meteredIds: [id(1), id(2), id(3), ...strip.childIds],
    meterlessIds: [id(5), id(6)],
    stop: async () => {
      await Promise.all(devices.map((device) => device.stop()));
    },
  };
}
