"""Directory documents: parse, verify, and (for simnet and tests) build.

The framework (dir-spec §1.2-1.3), bottom up:

* :mod:`~gotor.netdoc.tokenize` — bytes to :class:`~gotor.netdoc.tokenize.Item`
  (keyword, arguments, optional object, line number, byte offsets); the only
  code that reads raw document bytes, and the place of byte-level strictness.
  :func:`~gotor.netdoc.tokenize.format_item` is its inverse.
* :mod:`~gotor.netdoc.rules` — per-section keyword tables
  (:class:`~gotor.netdoc.rules.SectionRules`): multiplicity, argument counts,
  objects and their tags, first/last keywords, unknown-keyword policy,
  keywords reserved to other sections; :func:`~gotor.netdoc.rules.split_documents`
  for concatenations with ``@annotations``.
* :mod:`~gotor.netdoc.fields` — argument types with their formatters (times,
  hex, base64, integers, addresses, ``Key=Int`` lists), each raising
  :class:`~gotor.errors.DocumentError` that names the item and line.
* :mod:`~gotor.netdoc.checked` — :class:`~gotor.netdoc.checked.Unverified`
  wrappers and :class:`~gotor.netdoc.checked.ValidityWindow`: signed contents
  come out only through ``verify(..., now=...)``.
* :mod:`~gotor.netdoc.protover`, :mod:`~gotor.netdoc.policy` — ``proto``/``pr``
  version sets and ``p``/``p6`` exit-policy summaries.
* :mod:`~gotor.netdoc.sigcheck` — ``directory-signature`` checks and the
  authority quorum rule.

Documents: :mod:`~gotor.netdoc.authcert` (dir-spec §3.1),
:mod:`~gotor.netdoc.consensus` (§3.4.1, both flavours, §3.9),
:mod:`~gotor.netdoc.microdesc` (§3.3, and the join with a consensus);
:mod:`~gotor.netdoc.build_dir` writes all three.

Writing a parser for another document (a server descriptor, an onion-service
descriptor layer) follows the same steps::

    RULES = SectionRules("server descriptor", [
        Rule("router", Count.ONCE, min_args=5),
        Rule("bandwidth", Count.ONCE, min_args=3),
        ...
        Rule("router-signature", Count.ONCE, max_args=0, obj=ObjectRule.REQUIRED,
             tags=("SIGNATURE",)),
    ], first="router", last=("router-signature",))

    def parse_thing(data: bytes) -> UnverifiedThing:
        raw = bytes(data)
        items = tokenize(raw)
        sec = RULES.check(items)                  # DocumentError on any rule violation
        router = sec.one("router")
        port = int_arg(router, 2, "ORPort", 1, 65535)
        ...
        sig = sec.one("router-signature")
        signed = raw[items[0].start : sig.line_end]   # dir-spec §1.3: through the NL
        return UnverifiedThing(contents, digest_of(signed), validity)

Rules of the house for every parser here: malformed input raises
:class:`~gotor.errors.DocumentError` (never another exception); digests are
taken over the original bytes via the items' offsets, never over a
re-encoding; unknown keywords are kept and ignored unless the spec says
otherwise; time is a parameter (``now``), judged only when given.
"""
