/**
 * The vendor's published examples (Teltonika wiki, "Teltonika Data Sending Protocols"), with the
 * values their parse tables list. Kept here because the reference document is not in the repository.
 * Errata (wrong published CRCs, the broken Codec 16 UDP length) are recorded as such.
 */
import type { AvlRecord } from '../../src/protocol/types.js';

/** A decoded record as the parse tables list it: the time as ISO text, the IO elements as pairs. */
export interface ExpectedRecord extends Omit<AvlRecord, 'timestamp' | 'io'> {
  timestamp: string;
  /** id → raw value, in frame order. */
  io: [number, number | string][];
}

export interface AvlExample {
  name: string;
  transport: 'tcp' | 'udp';
  hex: string;
  codec: number;
  records: ExpectedRecord[];
  /** Reply the server sends (TCP: 4-byte count; UDP: 7 bytes). */
  ack: string;
  udp?: { packetId: number; avlPacketId: number; imei: string };
}

/** The position fields of the examples sent without a fix. */
export const zeroGps = { priority: 1, longitude: 0, latitude: 0, altitude: 0, angle: 0, satellites: 0, speed: 0 };

export const AVL_EXAMPLES: AvlExample[] = [
  {
    name: 'Codec 8 example 1 (IO in all four groups)',
    transport: 'tcp',
    hex: '000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF',
    codec: 0x08,
    records: [
      {
        timestamp: '2019-06-10T10:04:46.000Z',
        ...zeroGps,
        eventIoId: 1,
        generationType: null,
        io: [
          [21, 3],
          [1, 1],
          [66, 24079],
          [241, 24602],
          [78, 0],
        ],
      },
    ],
    ack: '00000001',
  },
  {
    name: 'Codec 8 example 2',
    transport: 'tcp',
    hex: '000000000000002808010000016B40D9AD80010000000000000000000000000000000103021503010101425E100000010000F22A',
    codec: 0x08,
    records: [
      {
        timestamp: '2019-06-10T10:05:36.000Z',
        ...zeroGps,
        eventIoId: 1,
        generationType: null,
        io: [
          [21, 3],
          [1, 1],
          [66, 24080],
        ],
      },
    ],
    ack: '00000001',
  },
  {
    name: 'Codec 8 example 3 (two records)',
    transport: 'tcp',
    hex: '000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B40D5C198010000000000000000000000000000000101010101000000020000252C',
    codec: 0x08,
    records: [
      { timestamp: '2019-06-10T10:01:01.000Z', ...zeroGps, eventIoId: 1, generationType: null, io: [[1, 0]] },
      { timestamp: '2019-06-10T10:01:19.000Z', ...zeroGps, eventIoId: 1, generationType: null, io: [[1, 1]] },
    ],
    ack: '00000002',
  },
  {
    name: 'Codec 8 Extended',
    transport: 'tcp',
    hex: '000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994',
    codec: 0x8e,
    records: [
      {
        timestamp: '2019-06-10T11:36:32.000Z',
        ...zeroGps,
        eventIoId: 1,
        generationType: null,
        io: [
          [1, 1],
          [17, 29],
          [16, 22949000],
          [11, 893700218],
          [14, 500686954],
        ],
      },
    ],
    ack: '00000001',
  },
  {
    name: 'Codec 16 (two records, generation type 5)',
    transport: 'tcp',
    hex: '000000000000005F10020000016BDBC7833000000000000000000000000000000000000B05040200010000030002000B00270042563A00000000016BDBC7871800000000000000000000000000000000000B05040200010000030002000B00260042563A00000200005FB3',
    codec: 0x10,
    records: [
      {
        timestamp: '2019-07-10T12:06:54.000Z',
        ...zeroGps,
        priority: 0,
        eventIoId: 11,
        generationType: 5,
        io: [
          [1, 0],
          [3, 0],
          [11, 39],
          [66, 22074],
        ],
      },
      {
        timestamp: '2019-07-10T12:06:55.000Z',
        ...zeroGps,
        priority: 0,
        eventIoId: 11,
        generationType: 5,
        io: [
          [1, 0],
          [3, 0],
          [11, 38],
          [66, 22074],
        ],
      },
    ],
    ack: '00000002',
  },
  {
    name: 'Codec 8 over UDP',
    transport: 'udp',
    hex: '003DCAFE0105000F33353230393330383634303336353508010000016B4F815B30010000000000000000000000000000000103021503010101425DBC000001',
    codec: 0x08,
    udp: { packetId: 0xcafe, avlPacketId: 0x05, imei: '352093086403655' },
    records: [
      {
        timestamp: '2019-06-13T06:23:26.000Z',
        ...zeroGps,
        eventIoId: 1,
        generationType: null,
        io: [
          [21, 3],
          [1, 1],
          [66, 23996],
        ],
      },
    ],
    ack: '0005CAFE010501',
  },
  {
    name: 'Codec 8 Extended over UDP',
    transport: 'udp',
    hex: '005FCAFE0107000F3335323039333038363430333635358E010000016B4F831C680100000000000000000000000000000000010005000100010100010011009D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A000001',
    codec: 0x8e,
    udp: { packetId: 0xcafe, avlPacketId: 0x07, imei: '352093086403655' },
    records: [
      {
        timestamp: '2019-06-13T06:25:21.000Z',
        ...zeroGps,
        eventIoId: 1,
        generationType: null,
        io: [
          [1, 1],
          [17, 157],
          [16, 22949000],
          [11, 893700218],
          [14, 500686954],
        ],
      },
    ],
    ack: '0005CAFE010701',
  },
  {
    name: 'Codec 16 over UDP (repaired: the published length field and swapped bytes are wrong)',
    transport: 'udp',
    hex: '0048CAFE0107000F33353230393430383532333135393210010000015117E40FE80000000000000000000000000000000000EF05050400010000030000B40000EF01010042111A000001',
    codec: 0x10,
    udp: { packetId: 0xcafe, avlPacketId: 0x07, imei: '352094085231592' },
    records: [
      {
        timestamp: '2015-11-18T00:00:01.000Z',
        ...zeroGps,
        priority: 0,
        eventIoId: 239,
        generationType: 5,
        io: [
          [1, 0],
          [3, 0],
          [180, 0],
          [239, 1],
          [66, 4378],
        ],
      },
    ],
    ack: '0005CAFE010701',
  },
  {
    name: 'Beacon record (Codec 8E, IO 385 in the NX group)',
    transport: 'tcp',
    hex: '00000000000000D68E01000001701F9B3FA9000F0E5732209AB450006800290400000181000100000000000000000001018100A911214B5C049F515341FCA950D2C264414E1000050006BA21E2C56DB5DFFB48D2B060D0F5A71096E000000000A92131A74BB76A79423196C916CFB9FAED45002D00159F0700112233445566778899ABCDE0810047AE0BE80015210F86676BEC91420A94409110029AFAC415B31A0AA101DE9C18E92CA5AA689697365434663222BA21EBBBDE835D7F4965B5F06C2EDCB3A55300010080A501736B79686F73742E646B000010000128AD01000030CB',
    codec: 0x8e,
    records: [
      {
        timestamp: '2020-02-07T12:23:53.001Z',
        priority: 0,
        longitude: 25.2598066,
        latitude: 54.7009616,
        altitude: 104,
        angle: 41,
        satellites: 4,
        speed: 0,
        eventIoId: 385,
        generationType: null,
        io: [
          [
            385,
            '11214b5c049f515341fca950d2c264414e1000050006ba21e2c56db5dffb48d2b060d0f5a71096e000000000a92131a74bb76a79423196c916cfb9faed45002d00159f0700112233445566778899abcde0810047ae0be80015210f86676bec91420a94409110029afac415b31a0aa101de9c18e92ca5aa689697365434663222ba21ebbbde835d7f4965b5f06c2edcb3a55300010080a501736b79686f73742e646b000010000128ad',
          ],
        ],
      },
    ],
    ack: '00000001',
  },
];

export interface CommandExample {
  name: string;
  hex: string;
  codec: number;
  type: number;
  text: string;
  imei?: string;
  timestamp?: string;
  /** What our encoder must produce for this command/response (server → device or simulator). */
  encode?: { kind: 'codec12-command' | 'codec12-response' | 'codec14-command'; input: string; imei?: string };
}

export const COMMAND_EXAMPLES: CommandExample[] = [
  {
    name: 'Codec 12 getinfo command',
    hex: '000000000000000F0C010500000007676574696E666F0100004312',
    codec: 0x0c,
    type: 0x05,
    text: 'getinfo',
    encode: { kind: 'codec12-command', input: 'getinfo' },
  },
  {
    name: 'Codec 12 getinfo response',
    hex: '00000000000000900C010600000088494E493A323031392F372F323220373A3232205254433A323031392F372F323220373A3533205253543A32204552523A312053523A302042523A302043463A302046473A3020464C3A302054553A302F302055543A3020534D533A30204E4F4750533A303A3330204750533A31205341543A302052533A332052463A36352053463A31204D443A30010000C78F',
    codec: 0x0c,
    type: 0x06,
    text: 'INI:2019/7/22 7:22 RTC:2019/7/22 7:53 RST:2 ERR:1 SR:0 BR:0 CF:0 FG:0 FL:0 TU:0/0 UT:0 SMS:0 NOGPS:0:30 GPS:1 SAT:0 RS:3 RF:65 SF:1 MD:0',
    encode: {
      kind: 'codec12-response',
      input:
        'INI:2019/7/22 7:22 RTC:2019/7/22 7:53 RST:2 ERR:1 SR:0 BR:0 CF:0 FG:0 FL:0 TU:0/0 UT:0 SMS:0 NOGPS:0:30 GPS:1 SAT:0 RS:3 RF:65 SF:1 MD:0',
    },
  },
  {
    name: 'Codec 12 getio command',
    hex: '000000000000000D0C010500000005676574696F01000000CB',
    codec: 0x0c,
    type: 0x05,
    text: 'getio',
    encode: { kind: 'codec12-command', input: 'getio' },
  },
  {
    name: 'Codec 12 getio response',
    hex: '00000000000000370C01060000002F4449313A31204449323A30204449333A302041494E313A302041494E323A313639323420444F313A3020444F323A3101000066E3',
    codec: 0x0c,
    type: 0x06,
    text: 'DI1:1 DI2:0 DI3:0 AIN1:0 AIN2:16924 DO1:0 DO2:1',
    encode: { kind: 'codec12-response', input: 'DI1:1 DI2:0 DI3:0 AIN1:0 AIN2:16924 DO1:0 DO2:1' },
  },
  {
    name: 'Codec 12 setdigout 11 (server encoder vector)',
    hex: '00000000000000140c01050000000c7365746469676f7574203131010000bed5',
    codec: 0x0c,
    type: 0x05,
    text: 'setdigout 11',
    encode: { kind: 'codec12-command', input: 'setdigout 11' },
  },
  {
    name: 'Codec 13 with an 8-byte millisecond timestamp (wiki-style)',
    hex: '00000000000000170D01050000000F0000016C0A81C320676574696E666F0100006855',
    codec: 0x0d,
    type: 0x05,
    text: 'getinfo',
    timestamp: '2019-07-19T13:52:52.000Z',
  },
  {
    name: 'Codec 13 real capture with a 4-byte seconds timestamp',
    hex: '00000000000000240d01060000001c642b3ad14754534c7c367c317c307c31323734393838347c317c0d0a010000ec11',
    codec: 0x0d,
    type: 0x06,
    text: 'GTSL|6|1|0|12749884|1|',
    timestamp: '2023-04-03T20:45:05.000Z',
  },
  {
    name: 'Codec 14 getver command',
    hex: '00000000000000160E01050000000E0352093081452251676574766572010000D2C1',
    codec: 0x0e,
    type: 0x05,
    text: 'getver',
    imei: '352093081452251',
    encode: { kind: 'codec14-command', input: 'getver', imei: '352093081452251' },
  },
  {
    name: 'Codec 14 ACK',
    hex: '00000000000000AB0E0106000000A303520930814522515665723A30332E31382E31345F3034204750533A41584E5F352E31305F333333332048773A464D42313230204D6F643A313520494D45493A33353230393330383134353232353120496E69743A323031382D31312D323220373A313320557074696D653A3137323334204D41433A363042444430303136323631205350433A312830292041584C3A30204F42443A3020424C3A312E362042543A340100007AAE',
    codec: 0x0e,
    type: 0x06,
    text: 'Ver:03.18.14_04 GPS:AXN_5.10_3333 Hw:FMB120 Mod:15 IMEI:352093081452251 Init:2018-11-22 7:13 Uptime:17234 MAC:60BDD0016261 SPC:1(0) AXL:0 OBD:0 BL:1.6 BT:4',
    imei: '352093081452251',
  },
  {
    name: 'Codec 15 message with timestamp and IMEI',
    hex: '000000000000001b0f010b00000013654b65a4012345678912345648656c6c6f210a01000093d6',
    codec: 0x0f,
    type: 0x0b,
    text: 'Hello!',
    imei: '123456789123456',
    timestamp: '2023-11-08T10:40:36.000Z',
  },
];

/** Published frames whose CRC is wrong (errata): must be refused with CRC_MISMATCH. */
export const BAD_CRC_EXAMPLES: { name: string; hex: string; declared: number; computed: number }[] = [
  {
    name: 'Codec 14 nACK example (published CRC 0x32AC, correct 0x635E)',
    hex: '00000000000000100E011100000008035209308145246801000032AC',
    declared: 0x32ac,
    computed: 0x635e,
  },
];

export const IMEI_LOGIN_EXAMPLE = { hex: '000F333536333037303432343431303133', imei: '356307042441013' };
