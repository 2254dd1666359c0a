"""Thai and English for the hub's login and auditor pages: a per-request choice.

``?lang=th`` or ``?lang=en`` picks the language and a cookie keeps it; otherwise the
browser's Accept-Language decides, and English is the fallback. The hub has no Babel
catalogue: these pages are few, so the texts are a table here.
"""

from __future__ import annotations

from flask import request

LANGUAGES = {"th": "ไทย", "en": "English"}
COOKIE = "hub_lang"

_TH = {
    "Hub sign-in": "เข้าสู่ระบบศูนย์กลาง",
    "Account": "บัญชีผู้ใช้",
    "Password": "รหัสผ่าน",
    "Sign in": "เข้าสู่ระบบ",
    "Sign out": "ออกจากระบบ",
    "Wrong account or password.": "บัญชีผู้ใช้หรือรหัสผ่านไม่ถูกต้อง",
    "Too many failed attempts. Try again in %(n)d seconds.":
        "พยายามผิดหลายครั้งเกินไป โปรดลองใหม่ในอีก %(n)d วินาที",
    "Logins are disabled: no accounts are provisioned.":
        "ปิดการเข้าสู่ระบบ: ยังไม่ได้กำหนดบัญชีผู้ใช้",
    "Audit logs": "บันทึกการตรวจสอบ",
    "Audit records": "รายการบันทึกการตรวจสอบ",
    "Access log": "บันทึกการเข้าถึง",
    "Device": "อุปกรณ์",
    "Log": "บันทึก",
    "First seen": "พบครั้งแรก",
    "Records held": "จำนวนรายการ",
    "Complete through": "ครบถ้วนถึงลำดับ",
    "Highest seq": "ลำดับสูงสุด",
    "Gaps": "ช่วงที่ขาดหาย",
    "Forks": "การแตกสาย",
    "Broken links": "ลิงก์ที่เสีย",
    "Last checkpoint": "จุดตรวจล่าสุด",
    "Chain": "สายโซ่",
    "verified": "ตรวจสอบแล้ว ครบถ้วน",
    "incomplete": "ไม่ครบถ้วน",
    "forked": "แตกสาย",
    "none": "ไม่มี",
    "Verify the chain": "ตรวจสอบสายโซ่",
    "Chain of %(device)s": "สายโซ่ของ %(device)s",
    "Search": "ค้นหา",
    "From": "ตั้งแต่",
    "Until": "จนถึง",
    "Verdict": "ผลการตรวจ",
    "Reason": "เหตุผล",
    "Time": "เวลา",
    "Profile": "ประเภท",
    "Issuer": "ผู้ออก",
    "Next page": "หน้าถัดไป",
    "Export CSV": "ส่งออก CSV",
    "Export JSONL": "ส่งออก JSONL",
    "No records match.": "ไม่พบรายการที่ตรงกัน",
    "Times are ISO 8601 with a zone, e.g. 2027-01-15T08:00:00Z.":
        "เวลาในรูปแบบ ISO 8601 พร้อมเขตเวลา เช่น 2027-01-15T08:00:00Z",
    "Who": "ผู้ใช้",
    "When": "เมื่อ",
    "From address": "จากที่อยู่",
    "Action": "การกระทำ",
    "Query": "เงื่อนไข",
    "Signed in as %(user)s (%(role)s)": "เข้าสู่ระบบเป็น %(user)s (%(role)s)",
    "Bad request": "คำขอไม่ถูกต้อง",
    "Showing the first %(n)d logs; filter by device to see others.":
        "แสดง %(n)d บันทึกแรก กรองตามอุปกรณ์เพื่อดูรายการอื่น",
    "Every access to these pages is logged.": "ทุกการเข้าถึงหน้านี้ถูกบันทึกไว้",
}


def current() -> str:
    """The language of this request (see module doc)."""
    asked = request.args.get("lang") or request.cookies.get(COOKIE)
    if asked in LANGUAGES:
        return asked
    best = request.accept_languages.best_match(list(LANGUAGES))
    return best or "en"


def gettext(text: str, **values: object) -> str:
    """``text`` in this request's language, with ``%(name)s`` values filled in."""
    translated = _TH.get(text, text) if current() == "th" else text
    return translated % values if values else translated
