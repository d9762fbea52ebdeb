"""Helpers shared by the test_fixcore_* tests: message building and a small test dictionary."""

from __future__ import annotations

SOH = b"\x01"


def fields_of(body: str, begin_string: str = "FIX.4.4") -> list[tuple[int, bytes]]:
    """'35=D|49=A|...' -> [(8, ..), (9, ..), (35, b'D'), ..., (10, ..)] with 9 and 10 computed."""
    parts = [p for p in body.split("|") if p]
    pairs: list[tuple[int, bytes]] = []
    for p in parts:
        tag, _, value = p.partition("=")
        pairs.append((int(tag), value.encode("latin-1")))
    wire_body = b"".join(b"%d=%s\x01" % (t, v) for t, v in pairs)
    head = b"8=%s\x019=%d\x01" % (begin_string.encode(), len(wire_body))
    cks = sum(head + wire_body) % 256
    return [(8, begin_string.encode()), (9, b"%d" % len(wire_body)), *pairs, (10, b"%03d" % cks)]


HDR = "49=CLIENT|56=GW|34=2|52=20240102-03:04:05.678"
NOS44 = "35=D|" + HDR + "|11=ORD1|21=1|38=100|40=2|44=10.5|54=1|55=IBM|60=20240102-03:04:05"

# A small dictionary exercising components, nested components, groups, nested groups, required
# flags at every level and a DATA field with its length.
TEST_XML = """<fix type='FIX' major='4' minor='4'>
 <header>
  <field name='BeginString' required='Y' />
  <field name='BodyLength' required='Y' />
  <field name='MsgType' required='Y' />
  <field name='SenderCompID' required='Y' />
  <field name='TargetCompID' required='Y' />
  <field name='MsgSeqNum' required='Y' />
  <field name='SendingTime' required='Y' />
  <field name='PossDupFlag' required='N' />
 </header>
 <trailer>
  <field name='SignatureLength' required='N' />
  <field name='Signature' required='N' />
  <field name='CheckSum' required='Y' />
 </trailer>
 <messages>
  <message name='Heartbeat' msgtype='0' msgcat='admin'>
   <field name='TestReqID' required='N' />
  </message>
  <message name='Order' msgtype='D' msgcat='app'>
   <field name='ClOrdID' required='Y' />
   <component name='Instrument' required='Y' />
   <component name='Parties' required='N' />
   <field name='Side' required='Y' />
   <field name='RawDataLength' required='N' />
   <field name='RawData' required='N' />
   <field name='ExecInst' required='N' />
  </message>
 </messages>
 <components>
  <component name='Instrument'>
   <field name='Symbol' required='Y' />
   <component name='SecAltIDGrp' required='N' />
  </component>
  <component name='SecAltIDGrp'>
   <group name='NoSecurityAltID' required='N'>
    <field name='SecurityAltID' required='Y' />
    <field name='SecurityAltIDSource' required='N' />
   </group>
  </component>
  <component name='Parties'>
   <group name='NoPartyIDs' required='N'>
    <field name='PartyID' required='Y' />
    <field name='PartyRole' required='N' />
    <group name='NoPartySubIDs' required='N'>
     <field name='PartySubID' required='Y' />
     <field name='PartySubIDType' required='N' />
    </group>
   </group>
  </component>
 </components>
 <fields>
  <field number='8' name='BeginString' type='STRING' />
  <field number='9' name='BodyLength' type='LENGTH' />
  <field number='10' name='CheckSum' type='STRING' />
  <field number='11' name='ClOrdID' type='STRING' />
  <field number='18' name='ExecInst' type='MULTIPLEVALUESTRING'>
   <value enum='1' description='NOT_HELD' />
   <value enum='2' description='WORK' />
   <value enum='G' description='ALL_OR_NONE' />
  </field>
  <field number='34' name='MsgSeqNum' type='SEQNUM' />
  <field number='35' name='MsgType' type='STRING'>
   <value enum='0' description='HEARTBEAT' />
   <value enum='D' description='ORDER_SINGLE' />
  </field>
  <field number='43' name='PossDupFlag' type='BOOLEAN' />
  <field number='49' name='SenderCompID' type='STRING' />
  <field number='52' name='SendingTime' type='UTCTIMESTAMP' />
  <field number='54' name='Side' type='CHAR'>
   <value enum='1' description='BUY' />
   <value enum='2' description='SELL' />
  </field>
  <field number='55' name='Symbol' type='STRING' />
  <field number='56' name='TargetCompID' type='STRING' />
  <field number='89' name='Signature' type='DATA' />
  <field number='93' name='SignatureLength' type='LENGTH' />
  <field number='95' name='RawDataLength' type='LENGTH' />
  <field number='96' name='RawData' type='DATA' />
  <field number='112' name='TestReqID' type='STRING' />
  <field number='448' name='PartyID' type='STRING' />
  <field number='452' name='PartyRole' type='INT' />
  <field number='453' name='NoPartyIDs' type='NUMINGROUP' />
  <field number='454' name='NoSecurityAltID' type='NUMINGROUP' />
  <field number='455' name='SecurityAltID' type='STRING' />
  <field number='456' name='SecurityAltIDSource' type='STRING' />
  <field number='523' name='PartySubID' type='STRING' />
  <field number='802' name='NoPartySubIDs' type='NUMINGROUP' />
  <field number='803' name='PartySubIDType' type='INT' />
 </fields>
</fix>
"""
