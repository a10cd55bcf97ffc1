"""The grammar words the reader needs, in Chinese and English (folded forms).

These are the language, not the scams: what negates, what contrasts, what
names a relative and what describes one. Typology phrases live in the ruleset.
"""

from __future__ import annotations

#: Negators that govern the next few words ("不是警察", "not the police").
LONG_NEGATORS = (
    "不是",
    "并不是",
    "并非",
    "而不是",
    "而非",
    "没有",
    "不属于",
    "并没有",
    "从来没有",
    "从没",
    # wanting, planning or needing not to: the verb phrase after it does not happen
    "不想",
    "不要",
    "不打算",
    "不会",
    "不用",
    "不需要",
    "不愿意",
    "没打算",
    "没买",
    "拒绝了",
    "not",
    "no",
    "never",
    "isn't",
    "wasn't",
    "aren't",
    "weren't",
    "don't",
    "didn't",
    "doesn't",
    "haven't",
    "hasn't",
    "won't",
    "rather than",
    "instead of",
    "without",
    "nothing",
    "neither",
    "nor",
    "nobody",
    "no one",
    "don't want",
    "do not want",
    "refused",
    "turned down",
    # what follows is named as a fraud the customer knows of, not what happened
    # to them ("冒充警察的骗子很多", "fake police officers")
    "冒充",
    "假冒",
    "假扮",
    "fake",
    "pretending to be",
    "pretend to be",
    "posing as",
    "impostor",
    "impostors",
    "beware of",
    "提防",
    "小心",
    "防止",
)
#: One-character Chinese negators: they govern only what follows at once ("不关闭").
SHORT_NEGATORS = ("不", "没", "非", "无", "未", "别", "勿")
#: Comparisons: what follows at once is a yardstick, not an event ("比中奖还高兴").
COMPARISONS = ("比", "than", "like winning")
#: Words that begin with a negator (or comparison) character but negate nothing.
NOT_NEGATIONS = (
    "比如",
    "比较",
    "比例",
    "比方",
    "不然",
    "不过",
    "不管",
    "不少",
    "不久",
    "不断",
    "不停",
    "不得不",
    "不仅",
    "不但",
    "非常",
    "无论",
    "不一定",
    "不到",
    "不了",
    "不好",
    "没多久",
    "没想到",
    "不舒服",
    "未来",
    "无法",
    "不要紧",
    "不会吧",
    "不用谢",
)
#: Words that end one phrase and start a contrasting one.
CONTRASTS = (
    "但是",
    "但",
    "可是",
    "不过",
    "而是",
    "只是",
    "其实",
    "然而",
    "but",
    "however",
    "though",
    "although",
    "whereas",
    "actually",
)
#: Punctuation that closes a clause (after folding: ASCII where NFKC maps it).
CLAUSE_ENDS = frozenset(',.;:!?、。\n()[]"')

#: Relatives, folded, with the relation they name.
RELATIVES: dict[str, str] = {
    **dict.fromkeys(("儿子", "son", "son's"), "son"),
    **dict.fromkeys(("女儿", "闺女", "daughter", "daughter's"), "daughter"),
    **dict.fromkeys(
        (
            "孙子",
            "孙女",
            "外孙",
            "外孙女",
            "孙儿",
            "grandson",
            "granddaughter",
            "grandchild",
            "grandkid",
            "grandson's",
            "granddaughter's",
            "grandchildren",
            "grandkids",
        ),
        "grandchild",
    ),
    **dict.fromkeys(
        ("老伴", "老公", "老婆", "丈夫", "妻子", "爱人", "wife", "husband", "wife's", "husband's"),
        "spouse",
    ),
    **dict.fromkeys(
        ("弟弟", "妹妹", "哥哥", "姐姐", "brother", "sister", "brother's", "sister's"), "sibling"
    ),
    **dict.fromkeys(
        ("侄子", "侄女", "外甥", "外甥女", "儿媳", "女婿", "nephew", "niece", "son-in-law"),
        "relative",
    ),
}
#: Words that, after a relative, describe who that relative is ("儿子是警察",
#: "my son works at the court"), rather than something that happened to them.
DESCRIBES = (
    "是",
    "在",
    "当",
    "做",
    "干",
    "工作",
    "上班",
    "任职",
    "退休前是",
    "is",
    "works",
    "worked",
    "was",
    "serves",
    "served",
    "became",
    "is a",
    "works at",
)

#: Words by which someone asks, tells or contacts the customer. A phrase that can
#: name a job or a place ("派出所", "the court") is an instruction only when
#: someone is telling the customer something; on its own it is where someone went
#: or what someone does ("刚从公安局办完身份证回来").
DIRECTIVES = (
    "说",
    "让",
    "叫",
    "要求",
    "要我",
    "要您",
    "通知",
    "打电话",
    "来电",
    "打来",
    "告诉",
    "称",
    "指导",
    "命令",
    "威胁",
    "发来",
    "视频里",
    "需要",
    "必须",
    "shuo",
    "said",
    "says",
    "say",
    "told",
    "tells",
    "asked",
    "asks",
    "called",
    "calls",
    "phoned",
    "rang",
    "wants",
    "wanted",
    "demanded",
    "ordered",
    "must",
    "need to",
    "needs to",
    "have to",
    "has to",
    "threatened",
)
