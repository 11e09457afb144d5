//! The kinds of data an i-PRO camera can be set to send.

use std::fmt;

use thiserror::Error;

/// A kind of data a camera sends, chosen per camera.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataFormat {
    /// AI crowd detection: counts of people in areas.
    AiCrowd,
    /// Face recognition: matches against registered faces.
    FaceRecognition,
    /// AI motion detection (AI-VMD): intruders, loitering, direction and line crossing.
    AiMotion,
    /// The HTTP alarm notification with its alarm source code.
    General,
}

/// A format name other than the four known ones.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("data format {value:?} is unknown; use ai-crowd, face-recognition, ai-motion or general")]
pub struct UnknownFormat {
    /// The name as given, cut to 40 characters.
    pub value: String,
}

impl DataFormat {
    /// Every format, in the order the source product lists them.
    pub const ALL: [DataFormat; 4] = [
        DataFormat::AiCrowd,
        DataFormat::FaceRecognition,
        DataFormat::AiMotion,
        DataFormat::General,
    ];

    /// Returns the name used in configuration files and URLs, such as `ai-motion`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::AiCrowd => "ai-crowd",
            DataFormat::FaceRecognition => "face-recognition",
            DataFormat::AiMotion => "ai-motion",
            DataFormat::General => "general",
        }
    }

    /// Returns the name the source product shows, such as `AI Motion Detection`.
    pub fn display_name(self) -> &'static str {
        match self {
            DataFormat::AiCrowd => "AI Crowd Detection",
            DataFormat::FaceRecognition => "Face Recognition",
            DataFormat::AiMotion => "AI Motion Detection",
            DataFormat::General => "General",
        }
    }

    /// Parses a name from [`as_str`](DataFormat::as_str), in any case.
    ///
    /// # Errors
    ///
    /// [`UnknownFormat`] for any other name.
    pub fn parse(value: &str) -> Result<DataFormat, UnknownFormat> {
        DataFormat::ALL
            .into_iter()
            .find(|format| format.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| UnknownFormat {
                value: value.chars().take(40).collect(),
            })
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for format in DataFormat::ALL {
            assert_eq!(DataFormat::parse(format.as_str()), Ok(format));
        }
        assert_eq!(DataFormat::parse("AI-Motion"), Ok(DataFormat::AiMotion));
    }

    #[test]
    fn unknown_name_lists_the_choices() {
        let err = DataFormat::parse("crowd").expect_err("unknown");
        assert!(
            err.to_string().contains("use ai-crowd, face-recognition"),
            "{err}"
        );
    }
}
