"""ISO code tables the compliance rules need, pure: countries (ISO 3166-1 alpha-2) and currencies (ISO 4217).

* ``COUNTRIES``: the 249 officially assigned ISO 3166-1 alpha-2 codes, plus ``XK`` (Kosovo). XK is a
  *user-assigned* code (ISO 3166-1 §8.1.3, the range AA, QM–QZ, XA–XZ, ZZ), not an official one, but the
  European Commission, the App Store and Google Play storefronts use it for Kosovo, so a store's country
  for a user there is XK. Nothing else outside the official list is accepted (no ``EU``, ``UK``, ``XX``).
* ``CURRENCY_MINOR_UNITS``: the active ISO 4217 currencies (List One of the ISO 4217 maintenance agency,
  SIX, as of 2025, including XCG which replaced ANG on 2025-03-31; ANG kept while stores still settle in
  it) and their minor units (the "E" column: JPY 0, USD 2, KWD 3, CLF 4). Precious metals, testing and
  "no currency" codes (XAU, XAG, XPD, XPT, XDR, XSU, XUA, XBA–XBD, XTS, XXX) have no minor unit and are
  not money a subscription is paid in: they are unknown here.
"""
from __future__ import annotations

_OFFICIAL = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT
JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM
PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""

OFFICIAL_COUNTRIES = frozenset(_OFFICIAL.split())
USER_ASSIGNED_ACCEPTED = frozenset({"XK"})
COUNTRIES = OFFICIAL_COUNTRIES | USER_ASSIGNED_ACCEPTED

_MINOR = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
    2: """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF
          CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD
          HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT
          MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR
          SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU
          UZS VED VES WST XCD XCG YER ZAR ZMW ZWG""",
}

CURRENCY_MINOR_UNITS: dict[str, int] = {code: units for units, codes in _MINOR.items() for code in codes.split()}


def normalize_code(value: str) -> str:
    """Codes are compared case-insensitively and without surrounding blanks: ``" de "`` is ``DE``."""
    return value.strip().upper()


def is_country(value: object) -> bool:
    return isinstance(value, str) and normalize_code(value) in COUNTRIES


def is_currency(value: object) -> bool:
    return isinstance(value, str) and normalize_code(value) in CURRENCY_MINOR_UNITS


def minor_units(currency: str) -> int:
    """The currency's minor units (KeyError for a code that is not an active ISO 4217 currency)."""
    return CURRENCY_MINOR_UNITS[normalize_code(currency)]
