// upload_body.hpp - where the body of an HTTP upload goes.
//
// A raw body is one file, named by the client's ?name=. A multipart/form-data
// body goes through the streaming parser (multipart.hpp), and every part with
// a file name becomes a file of its own, as a browser's <input type=file
// multiple> sends them; parts without one (plain form fields) are read and
// dropped. Each file's name is sanitised (storage.hpp) after decoding.
//
// All or nothing: the files are committed only once the whole body has
// arrived and parsed, and if committing one of them fails, those already
// committed are removed again. An UploadBody destroyed before commit()
// succeeded leaves nothing behind (its UploadFiles remove their temporary
// files). A crash between two commits can leave the earlier files; nothing
// short of a directory per upload could avoid that.
//
// Memory stays bounded whatever the body: the parser's own bound, plus one
// UploadFile (a descriptor and a SHA-256 state) per file, at most max_files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "multipart.hpp"
#include "storage.hpp"

namespace upload_server {

class UploadBody final : private MultipartSink {
 public:
  /// The most file parts one multipart body may have: each holds a descriptor
  /// open until the body ends. More is refused as a bad request.
  static constexpr std::size_t max_files = 32;

  /// Why the upload failed.
  enum class Failure {
    none,
    bad_request,  ///< the body is malformed, has no file, or too many (a 400)
    storage,      ///< a file could not be created, written or committed (storage_error())
  };

  /// A multipart body if `boundary` is given (boundary_from_content_type),
  /// else a raw body stored as `raw_name` (decoded, not yet sanitised). The
  /// raw file is created at once: failed() tells whether that worked.
  /// With `declared_size` (the Content-Length), each file is opened holding
  /// room on the disk for what is left of the body (storage.hpp), so a full
  /// disk fails the upload at open, not megabytes later; a part that ends
  /// gives back what it did not use.
  UploadBody(std::filesystem::path dir, std::optional<std::string> boundary,
             std::string_view raw_name, std::optional<std::uint64_t> declared_size = {});
  UploadBody(const UploadBody&) = delete;
  UploadBody& operator=(const UploadBody&) = delete;
  ~UploadBody() override = default;

  /// The next bytes of the body. False once something went wrong (and from
  /// then on); the caller stops feeding and answers with failure()/error().
  bool write(std::string_view data);

  /// Call once the whole body has arrived: false if the multipart body did
  /// not end properly or held no file.
  bool finish();

  /// Commits every file (call after finish() returned true) and fills
  /// `stored` in the order of the parts. On failure nothing is left stored,
  /// `stored` is empty, and failure() is storage.
  [[nodiscard]] std::error_code commit(std::vector<Stored>& stored);

  [[nodiscard]] bool failed() const noexcept { return failure_ != Failure::none; }
  [[nodiscard]] Failure failure() const noexcept { return failure_; }
  /// What went wrong, for the client and the log; empty if nothing did.
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  /// The system's error for a storage failure (ENOSPC, EDQUOT, EACCES, ...).
  [[nodiscard]] std::error_code storage_error() const noexcept { return storage_error_; }
  /// Files begun so far.
  [[nodiscard]] std::size_t files() const noexcept { return files_.size(); }
  /// The name the last file begun is to be stored as (UploadFile::planned_name),
  /// "" before the first file part of a multipart body and once committed.
  [[nodiscard]] std::string_view current_file() const noexcept {
    return files_.empty() ? std::string_view{} : std::string_view{files_.back().planned_name()};
  }

 private:
  void open(std::string_view client_name);
  void write_file(std::string_view data);
  void fail_request(std::string message);
  void fail_storage(std::string_view doing, std::error_code error);

  void on_part_begin(const PartHeaders& headers) override;
  void on_part_data(std::string_view data) override;
  void on_part_end() override;

  std::filesystem::path dir_;
  std::optional<std::uint64_t> declared_size_;
  std::uint64_t fed_ = 0;  ///< body bytes fed before the current write()
  std::optional<MultipartParser> parser_;
  std::vector<UploadFile> files_;
  bool in_file_part_ = false;
  Failure failure_ = Failure::none;
  std::string error_;
  std::error_code storage_error_;
};

}  // namespace upload_server
