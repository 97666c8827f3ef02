// upload_body.cpp - one file per file part, committed together.
#include "upload_body.hpp"

#include <algorithm>
#include <utility>

namespace upload_server {

UploadBody::UploadBody(std::filesystem::path dir, std::optional<std::string> boundary,
                       std::string_view raw_name, std::optional<std::uint64_t> declared_size)
    : dir_{std::move(dir)}, declared_size_{declared_size} {
  if (boundary) {
    parser_.emplace(*boundary);
  } else {
    open(raw_name);
  }
}

bool UploadBody::write(std::string_view data) {
  if (failed()) return false;
  if (!parser_) {
    write_file(data);
  } else if (parser_->feed(data, *this) == MultipartParser::Status::error && !failed()) {
    // (A sink failure stops the body first; the parser knows nothing of it.)
    fail_request("malformed multipart body: " + std::string{parser_->error()});
  }
  fed_ += data.size();
  return !failed();
}

bool UploadBody::finish() {
  if (failed()) return false;
  if (parser_ && parser_->finish() != MultipartParser::Status::done) {
    fail_request("malformed multipart body: " + std::string{parser_->error()});
  } else if (files_.empty()) {
    fail_request("the multipart body has no part with a filename");
  }
  return !failed();
}

std::error_code UploadBody::commit(std::vector<Stored>& stored) {
  stored.clear();
  if (failed()) return storage_error_ ? storage_error_ : std::make_error_code(std::errc::io_error);
  for (UploadFile& file : files_) {
    Stored one;
    if (const std::error_code error = file.commit(one)) {
      // Take back what is already in the directory: an error means nothing
      // was stored. The names are ours (link(2) never replaces a file).
      for (const Stored& earlier : stored) {
        std::error_code ignored;
        std::filesystem::remove(dir_ / earlier.name, ignored);
      }
      stored.clear();
      fail_storage("cannot store the file", error);
      return error;
    }
    stored.push_back(std::move(one));
  }
  files_.clear();
  return {};
}

void UploadBody::open(std::string_view client_name) {
  UploadFile& file = files_.emplace_back();
  // A part begun in this write() is at most what is left of the body from
  // its start: holding that much can only overestimate.
  const std::string safe_name = sanitize_file_name(client_name);
  const std::error_code error =
      declared_size_ ? file.open(dir_, safe_name, *declared_size_ - std::min(fed_, *declared_size_))
                     : file.open(dir_, safe_name);
  if (error) {
    fail_storage("cannot create the file", error);
  }
}

void UploadBody::write_file(std::string_view data) {
  if (const std::error_code error = files_.back().write(data)) {
    fail_storage("cannot write the file", error);
  }
}

void UploadBody::fail_request(std::string message) {
  failure_ = Failure::bad_request;
  error_ = std::move(message);
}

void UploadBody::fail_storage(std::string_view doing, std::error_code error) {
  failure_ = Failure::storage;
  storage_error_ = error;
  error_ = std::string{doing} + ": " + error.message();
}

void UploadBody::on_part_begin(const PartHeaders& headers) {
  // A part with an empty filename is what a browser sends for a file input
  // left empty: a field, not a file.
  in_file_part_ = !failed() && !headers.filename.empty();
  if (!in_file_part_) return;
  if (files_.size() == max_files) {
    in_file_part_ = false;
    fail_request("more than " + std::to_string(max_files) + " file parts in one request");
    return;
  }
  open(headers.filename);
}

void UploadBody::on_part_end() {
  if (!in_file_part_) return;
  in_file_part_ = false;
  // The part is complete: the room held for the rest of the body is the
  // next part's, not this one's.
  if (const std::error_code error = files_.back().release_unwritten()) {
    fail_storage("cannot write the file", error);
  }
}

void UploadBody::on_part_data(std::string_view data) {
  if (in_file_part_ && !failed()) write_file(data);
}

}  // namespace upload_server
