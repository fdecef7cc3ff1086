#include "tokenizer/unicode_normalize.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

namespace px {

std::string to_nfc(std::string_view utf8) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) return std::string(utf8);
  // ICU would replace invalid sequences by U+FFFD; leave such text to the encoder as is.
  const icu::UnicodeString text = icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), int32_t(utf8.size())));
  std::string round_trip;
  text.toUTF8String(round_trip);
  if (round_trip != utf8) return std::string(utf8);
  if (nfc->isNormalized(text, status) && U_SUCCESS(status)) return round_trip;
  status = U_ZERO_ERROR;
  const icu::UnicodeString normalized = nfc->normalize(text, status);
  if (U_FAILURE(status)) return std::string(utf8);
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

}  // namespace px
